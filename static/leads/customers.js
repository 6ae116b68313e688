/* Customer pages: select-all for bulk actions, the bulk action's own field, confirmations,
 * and the duplicate check while typing. Attached through data- attributes (no inline script: CSP). */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.matches("[data-select-all]")) {
      var table = target.closest("table");
      if (!table) return;
      table.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "bulk-action") {
      document.querySelectorAll("[data-bulk-for]").forEach(function (field) {
        field.classList.toggle("d-none", field.getAttribute("data-bulk-for") !== target.value);
      });
    }
  });

  // <form data-confirm="question">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
