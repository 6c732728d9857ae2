// Times in the browser's zone: every <time datetime> element gets its text
// from the browser's clock settings, and the gizmo learns the zone's
// offset (a cookie) so that its charts mark round times of this zone. The
// pages work without this script; their times are then in UTC.
(function () {
  var offset = -new Date().getTimezoneOffset();
  document.cookie = "tz=" + offset + "; path=/; max-age=31536000; SameSite=Strict" +
    (location.protocol === "https:" ? "; Secure" : "");
  var formats = {
    t: { hour: "numeric", minute: "2-digit" },
    d: { month: "short", day: "numeric" },
    "": { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" }
  };
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) return;
    el.textContent = d.toLocaleString([], formats[el.dataset.f] || formats[""]);
  });
  var tz = document.getElementById("tz");
  if (tz) {
    var name = Intl.DateTimeFormat().resolvedOptions().timeZone;
    tz.textContent = "Times in your browser's zone" + (name ? " (" + name + ")" : "") + ".";
  }
})();
