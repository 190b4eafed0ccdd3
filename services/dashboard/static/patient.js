// The PHQ-9 trend: one point per scored intake/check-in (red where the check-in met the
// worsening rule), with the response line (half the baseline) and the remission line (5).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("phq9-data").textContent);
  const pts = data.points.map((p) => ({ x: Date.parse(p.x), y: p.y }));
  const xs = pts.map((p) => p.x);
  const span = xs.length ? [Math.min(...xs), Math.max(...xs)] : [Date.now(), Date.now()];
  const flat = (y) => (y === null ? [] : [{ x: span[0], y }, { x: span[1], y }]);
  const label = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  window.phq9Chart = new Chart(document.getElementById("phq9-chart"), {
    type: "line",
    data: {
      datasets: [
        {
          label: "PHQ-9 total",
          data: pts,
          borderColor: "#14213d",
          pointRadius: 5,
          pointBackgroundColor: data.points.map((p) => (p.worsening ? "#b00020" : p.suicidal ? "#7b1fa2" : "#14213d")),
          tension: 0.2,
        },
        { label: "response (50% of baseline)", data: flat(data.response_line), borderColor: "#1a7f37", borderDash: [6, 4], pointRadius: 0 },
        { label: "remission (< 5)", data: flat(data.remission_line), borderColor: "#0b7285", borderDash: [2, 3], pointRadius: 0 },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: "linear", ticks: { callback: (v) => label(v), maxTicksLimit: 6 } },
        y: { min: 0, max: 27, title: { display: true, text: "PHQ-9" } },
      },
      plugins: { tooltip: { callbacks: { title: (items) => label(items[0].parsed.x) } } },
    },
  });
  document.getElementById("phq9-chart").dataset.points = String(pts.length);
})();
