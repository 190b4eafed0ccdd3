// The site week's one action menu: a click on a block opens it beside the block with the
// actions its status allows (rendering a menu per block made busy weeks slow to serve).
(function () {
  "use strict";
  const ACTIONS = { proposed: ["confirm", "cancel"], confirmed: ["complete", "no-show", "cancel"] };
  function esc(s) { return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }
  document.addEventListener("click", (ev) => {
    const menu = document.getElementById("block-menu");
    if (!menu) return;
    const block = ev.target.closest(".block");
    if (!block) { if (!ev.target.closest("#block-menu")) menu.hidden = true; return; }
    const table = block.closest("table.week");
    const d = block.dataset;
    const q = `site=${encodeURIComponent(table.dataset.site)}&week=${encodeURIComponent(table.dataset.week)}`;
    const buttons = (ACTIONS[d.status] || []).map((a) =>
      `<button class="act-${a}" hx-post="/actions/appointments/${esc(d.appointmentId)}/${a}?${q}" hx-target="#week">${a}</button>`
    ).join(" ");
    menu.innerHTML = `<a href="/patients/${esc(d.patient)}"><code>${esc(d.patient)}</code></a> ` +
      `${esc(d.kind)} ${esc(d.seq)}, ${esc(d.localStart)}–${esc(d.localEnd)}, ${esc(d.status.replace("_", " "))} ` +
      (buttons || "<span class='muted'>(no actions)</span>");
    menu.dataset.for = d.appointmentId;
    const r = block.getBoundingClientRect();
    menu.style.left = `${window.scrollX + r.left}px`;
    menu.style.top = `${window.scrollY + r.bottom + 4}px`;
    menu.hidden = false;
    htmx.process(menu);
  });
})();
