// Tells the server the viewer's time zone (a cookie read by the Audit logs tab).
// Without JavaScript, times are shown in UTC.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("tz=" + zone) === -1) {
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* the page still works, in UTC */ }
})();
