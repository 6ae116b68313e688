/* The printable contract: the Print button (no inline handlers: CSP). */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-print]")) {
      window.print();
    }
  });
})();
