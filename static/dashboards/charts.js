// Draws every dashboard chart: a <canvas data-chart="key"> reads its spec from the JSON script with id
// "chart-key" (rendered by json_script). No inline scripts (CSP).
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById("chart-" + canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        responsive: true,
        aspectRatio: 2,
        plugins: { legend: { display: spec.datasets.length > 1 || spec.type === "doughnut" } },
        scales: spec.type === "doughnut" ? {} : { y: { beginAtZero: true } }
      }
    });
  });
})();
