// The dashboard's small amount of JavaScript: remember who is acting, and make a new
// critical alert impossible to miss (a banner that flashes, and a tone once sound is on;
// browsers only allow sound after a click, hence the toggle).
(function () {
  "use strict";
  const actor = document.getElementById("actor");
  actor.value = localStorage.getItem("interval.actor") || "";
  actor.addEventListener("change", () => localStorage.setItem("interval.actor", actor.value.trim()));

  let audio = null;
  const sound = document.getElementById("sound");
  sound.addEventListener("click", () => {
    if (audio) { audio.close(); audio = null; } else { audio = new AudioContext(); }
    sound.setAttribute("aria-pressed", audio ? "true" : "false");
    sound.textContent = audio ? "sound on" : "sound off";
  });
  function tone() {
    if (!audio) return;
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.6);
  }

  let seen = null; // the open critical alerts on the board last time
  const banner = document.getElementById("critical-banner");
  function check() {
    const board = document.querySelector("#board table.board");
    if (!board) return;
    const ids = (board.dataset.criticalIds || "").split(" ").filter(Boolean);
    const fresh = seen === null ? [] : ids.filter((id) => !seen.has(id));
    seen = new Set(ids);
    if (ids.length === 0) { banner.hidden = true; return; }
    banner.hidden = false;
    banner.textContent = `${ids.length} open critical alert${ids.length > 1 ? "s" : ""}: someone must acknowledge`;
    if (fresh.length) {
      banner.classList.remove("flash"); void banner.offsetWidth; banner.classList.add("flash");
      banner.dataset.newest = fresh[0];
      tone();
    }
  }
  document.addEventListener("DOMContentLoaded", check);
  document.body.addEventListener("htmx:afterSwap", check);
})();
