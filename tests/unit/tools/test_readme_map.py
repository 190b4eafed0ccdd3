"""README's map of the code is the tree's: no module left out, none that is gone."""

from __future__ import annotations

from tools.readme_map import README, build, current


def test_the_readme_map_lists_every_module_as_the_tree_has_it() -> None:
    assert current(README.read_text()) == build(), (
        "README.md's map is stale: run `python -m tools.readme_map --write`"
    )
