/* Activities pages. No inline scripts (CSP): behaviour hangs on data- attributes. */
(function () {
  "use strict";
  // <button data-copy="#input">: copy the input's value to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) {
      return;
    }
    input.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value);
    }
  });
})();
