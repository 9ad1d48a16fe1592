// MyKey pages: an optional enhancement only; every page works without it.
// Moves focus to an error summary when a form comes back with errors, so a screen reader
// announces it and a keyboard user starts from the list of links to the fields.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
});

// Consoles: a bulk grant job's page polls its state and moves the progress bar; when the
// job has finished it reloads once to show the result. Without the script the page offers a
// plain "refresh" link instead.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.querySelector("[data-job-poll]");
  if (!box || box.hasAttribute("data-finished") || !window.fetch) { return; }
  var bar = box.querySelector("progress");
  var status = box.querySelector("[data-job-status]");
  function poll() {
    fetch(box.getAttribute("data-job-poll"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (bar) { bar.max = s.total; bar.value = s.done; }
        status.textContent = s.text;
        if (s.finished) { window.location.reload(); } else { setTimeout(poll, 500); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
});
