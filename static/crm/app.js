/* Shared page behaviour. No inline scripts or on*= handlers anywhere: the Content-Security-Policy
 * refuses them. Behaviour is attached here (or in static/<app>/*.js) through data- attributes. */
(function () {
  "use strict";

  // <select data-autosubmit> (e.g. the language switcher): submit its form when the choice changes.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLElement && target.matches("[data-autosubmit]") && target.form) {
      if (typeof target.form.requestSubmit === "function") {
        target.form.requestSubmit();
      } else {
        target.form.submit();
      }
    }
  });
})();
