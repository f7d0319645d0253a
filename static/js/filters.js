// The filter form's time range: a preset and a custom start cannot both be given (the server
// refuses that with a message), so choosing one clears the other. Without JavaScript the
// server's message says what to do.
(function () {
  var preset = document.getElementById("id_range");
  var after = document.getElementById("id_after");
  var before = document.getElementById("id_before");
  if (!preset || !after || !before) return;
  preset.addEventListener("change", function () {
    if (preset.value) { after.value = ""; before.value = ""; }
  });
  [after, before].forEach(function (input) {
    input.addEventListener("input", function () { if (input.value) preset.value = ""; });
  });
})();
