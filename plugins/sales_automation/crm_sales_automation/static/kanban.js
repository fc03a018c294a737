// The sales board: drag a deal card onto another column to move it to that stage.
// Without this file every card has a small form that does the same (no inline scripts: CSP).
(function () {
  "use strict";
  var board = document.querySelector(".kanban");
  if (!board) { return; }
  var status = document.getElementById("kanban-status");
  var dragged = null;
  board.addEventListener("dragstart", function (e) {
    var card = e.target.closest ? e.target.closest(".deal[data-move]") : null;
    if (!card) { return; }
    dragged = card;
    card.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.id);
  });
  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  board.addEventListener("dragover", function (e) {
    var col = e.target.closest ? e.target.closest(".kanban-col") : null;
    if (!col || !dragged) { return; }
    e.preventDefault();
    col.classList.add("drop-target");
  });
  board.addEventListener("dragleave", function (e) {
    var col = e.target.closest ? e.target.closest(".kanban-col") : null;
    if (col && !col.contains(e.relatedTarget)) { col.classList.remove("drop-target"); }
  });
  board.addEventListener("drop", function (e) {
    var col = e.target.closest ? e.target.closest(".kanban-col") : null;
    if (!col || !dragged) { return; }
    e.preventDefault();
    var card = dragged;
    if (card.closest(".kanban-col") === col) { return; }
    var body = new URLSearchParams({stage: col.dataset.stage, csrf: board.dataset.csrf});
    status.textContent = "…";
    fetch(card.dataset.move, {method: "POST", body: body, credentials: "same-origin",
                              headers: {"X-Console-Fetch": "1", "X-CSRF-Token": board.dataset.csrf}})
      .then(function (r) {
        if (r.status === 204) { window.location.reload(); return null; }
        return r.text().then(function (t) { status.textContent = t; status.classList.add("alert"); });
      })
      .catch(function () { status.textContent = "network error"; status.classList.add("alert"); });
  });
}());
