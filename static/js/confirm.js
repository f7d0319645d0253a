// A button with data-confirm="question" submits its form only once the question is answered
// yes. (An inline onclick would need the Content-Security-Policy to allow inline script.)
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
