// The export settings page, enhanced: Copy buttons, and the permission policy following the
// bucket and prefix as they are typed. Without JavaScript nothing is lost: the buttons stay
// hidden and the server renders the policy for the saved (or last tested) destination.
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.tagName === "INPUT" ? source.value : source.textContent;
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });

  // The policy exports.settings.permission_policy renders, with the prefix trimmed as saving
  // trims it.
  var policy = document.getElementById("permission-policy");
  var bucket = policy && document.getElementById(policy.dataset.bucketInput);
  var prefix = policy && document.getElementById(policy.dataset.prefixInput);
  if (!bucket || !prefix) return;
  function update() {
    var path = prefix.value.trim().replace(/^\/+|\/+$/g, "");
    var resource = "arn:aws:s3:::" + (bucket.value.trim() || "<bucket>") + "/" +
      (path ? path + "/" : "") + "*";
    policy.querySelector("code").textContent = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "s3:PutObject", Resource: resource }]
    }, null, 2);
  }
  bucket.addEventListener("input", update);
  prefix.addEventListener("input", update);
})();
