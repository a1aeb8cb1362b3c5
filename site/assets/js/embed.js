/* diffusion-atlas embed button: copies an <iframe> snippet of the figure's standalone embed page.
 *
 * Any <button class="atlas-embed" data-embed-src="relative/url.html" data-embed-title="..."> inside
 * a figure works; the snippet's URL is absolute (resolved against the current page) and carries the
 * figure's current step (#traj-<id>=12). Atlas.embedSnippet(button) returns the snippet.
 * On embed pages, ?theme=dark|light forces a colour scheme (default: the reader's preference).
 */
(function () {
  "use strict";
  var A = window.Atlas;

  // The snippet is HTML pasted into someone else's page: every part is escaped for a quoted attribute.
  function attr(text) {
    return String(text).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")
      .replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function embedSnippet(btn) {
    var fig = btn.closest("figure") || document.body;
    var url = new URL(btn.dataset.embedSrc, location.href);
    var group = fig.dataset && fig.dataset.group;
    var step = group ? A.getStep(group) : undefined;
    url.hash = step ? encodeURIComponent(group) + "=" + step : "";
    var height = Math.max(320, Math.ceil(fig.getBoundingClientRect().height + 72));
    return '<iframe src="' + attr(url.href) + '" title="' + attr(btn.dataset.embedTitle || "diffusion-atlas figure") +
      '" width="100%" height="' + height +
      '" style="border:0;max-width:760px" loading="lazy"></iframe>';
  }

  function legacyCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    ta.remove();
    return ok;
  }

  function show(btn, message, snippet) {
    var status = btn.parentElement.querySelector(".atlas-embed-status");
    if (!status) return;
    status.textContent = "";
    status.textContent = message;
    btn.dataset.copied = snippet ? "false" : "true";
    if (snippet) { // could not copy: offer the snippet to copy by hand
      var input = document.createElement("input");
      input.className = "atlas-embed-manual";
      input.readOnly = true;
      input.value = snippet;
      input.setAttribute("aria-label", "Embed code");
      status.appendChild(input);
      input.select();
    }
    clearTimeout(btn._atlasTimer);
    btn._atlasTimer = setTimeout(function () { status.textContent = ""; delete btn.dataset.copied; }, snippet ? 15000 : 2500);
  }

  function copy(btn) {
    var snippet = embedSnippet(btn);
    btn.dataset.snippet = snippet;
    var done = function () { show(btn, "Copied embed code"); };
    var fallback = function () {
      if (legacyCopy(snippet)) done(); else show(btn, "Copy this: ", snippet);
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(snippet).then(done, fallback);
    else fallback();
  }

  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("button.atlas-embed");
    if (btn) copy(btn);
  });

  function theme() {
    if (!document.body || !document.body.classList.contains("atlas-embed-page")) return;
    var t = new URLSearchParams(location.search).get("theme");
    if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
  }

  A.embedSnippet = embedSnippet;
  A.ready(theme);
})();
