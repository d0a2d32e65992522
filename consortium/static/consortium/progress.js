// Progress of long work in the admin (audit exports): each element with a
// data-progress-url polls that URL every second and shows what it answers, then the
// result's link when the work is done, or the error when it failed.
"use strict";

(function () {
  const PERIOD_MS = 1000;

  function follow(box) {
    const url = box.dataset.progressUrl;
    const bar = box.querySelector("progress");
    const text = box.querySelector(".progress-text");
    const result = box.querySelector(".progress-result");

    function show(state) {
      bar.value = state.percent;
      bar.textContent = state.percent + "%";
      if (state.status === "done") {
        text.textContent = state.percent + "% " + state.status_label;
        if (state.file) {
          const link = document.createElement("a");
          link.href = state.file;
          link.textContent = state.file_name;
          result.replaceChildren(link);
        }
        return true;
      }
      if (state.status === "failed") {
        box.classList.add("progress-failed");
        text.textContent = state.status_label + ": " + state.error;
        return true;
      }
      text.textContent = state.percent + "% " + state.step;
      return false;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status);
          }
          return response.json();
        })
        .then(function (state) {
          if (!show(state)) {
            window.setTimeout(poll, PERIOD_MS);
          }
        })
        .catch(function () {
          window.setTimeout(poll, PERIOD_MS * 5); // the server is busy or restarting
        });
    }

    window.setTimeout(poll, PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-progress-url]").forEach(function (box) {
      if (box.dataset.progressUrl) {
        follow(box);
      }
    });
  });
})();
