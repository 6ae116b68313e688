/* The kanban board: drag a card to another column (SortableJS), the server decides (HTMX).
 * A refused move sends the `opportunity-move-refused` event: the card snaps back to where it was and
 * the reason (with a form to fix it) shows above the board. No inline scripts (CSP). */
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || typeof Sortable === "undefined" || typeof htmx === "undefined") {
    return;
  }
  var pending = null;

  function moveUrl(id) {
    return board.dataset.moveUrl.replace("/0/", "/" + id + "/");
  }

  function snapBack() {
    if (!pending) {
      return;
    }
    var cards = pending.from.querySelectorAll(".opp-card");
    var before = cards[pending.index] || pending.from.querySelector(".opp-load-more");
    if (pending.card.parentNode) {
      pending.card.parentNode.removeChild(pending.card);
    }
    pending.from.insertBefore(pending.card, before || null);
    pending.card.classList.remove("opp-pending");
    pending = null;
    var feedback = document.getElementById("board-feedback");
    if (feedback) {
      feedback.scrollIntoView({block: "nearest"});
    }
  }

  board.querySelectorAll(".opp-cards").forEach(function (list) {
    Sortable.create(list, {
      group: "opportunities",
      sort: false,
      draggable: ".opp-card",
      filter: ".opp-load-more",
      animation: 150,
      onEnd: function (evt) {
        if (evt.from === evt.to || pending) {
          return;
        }
        var card = evt.item;
        pending = {card: card, from: evt.from, index: evt.oldDraggableIndex};
        card.classList.add("opp-pending");
        htmx.ajax("POST", moveUrl(card.dataset.id), {
          target: card,
          swap: "outerHTML",
          values: {to_stage: evt.to.dataset.stage, from_stage: card.dataset.stage, owner: board.dataset.owner || ""}
        }).catch(snapBack);
      }
    });
  });

  document.body.addEventListener("opportunity-move-refused", snapBack);
  document.body.addEventListener("opportunity-moved", function () {
    pending = null;
  });
  document.body.addEventListener("htmx:responseError", snapBack);
  document.body.addEventListener("htmx:sendError", snapBack);
})();
