// MyKey pages: an optional enhancement only; every page works without it.
// Moves focus to an error summary when a form comes back with errors, so a screen reader
// announces it and a keyboard user starts from the list of links to the fields.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
});
