/* diffusion-atlas gallery: find a prompt among hundreds by its words, and show the cards a page at a time.
 *
 * Markup (generator/render/templates/gallery.md.j2):
 *   .atlas-gallery[data-atlas=gallery][data-page-size=N]  the cards; each .atlas-card has data-words (its prompt text(s), lower case)
 *   .atlas-gallery-tools[hidden]         shown once this script runs (without it every card is listed, as before):
 *     input[data-gallery-filter]         cards whose words contain every typed word stay, the others are hidden
 *     [data-gallery-count]               "48 of 1000 prompts shown" (a polite live region)
 *     button[data-gallery-more]          shows the next N matching cards
 * Images are loading="lazy": a hidden card fetches nothing, so a 1,000-prompt gallery loads one page of them.
 * The filter text is kept in the URL (?q=...) so a filtered gallery can be linked and survives going back.
 */
(function () {
  "use strict";

  function mount(gallery) {
    if (gallery.dataset.galleryMounted) return;
    gallery.dataset.galleryMounted = "1";
    var tools = document.querySelector(".atlas-gallery-tools");
    if (!tools) return;
    var input = tools.querySelector("[data-gallery-filter]");
    var count = tools.querySelector("[data-gallery-count]");
    var more = tools.querySelector("[data-gallery-more]");
    var cards = Array.prototype.slice.call(gallery.querySelectorAll(".atlas-card"));
    var pageSize = parseInt(gallery.dataset.pageSize, 10) || 60;
    var shown = pageSize;

    function matches(card, words) {
      var text = card.dataset.words || "";
      return words.every(function (word) { return text.indexOf(word) !== -1; });
    }

    function update() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var matching = 0;
      cards.forEach(function (card) {
        var hit = matches(card, words);
        card.hidden = !hit || matching >= shown;
        if (hit) matching += 1;
      });
      var visible = Math.min(matching, shown);
      count.textContent = visible + " of " + matching + (words.length ? " matching" : "") +
        " prompt" + (matching === 1 ? "" : "s") + " shown";
      more.hidden = matching <= shown;
      more.textContent = "Show " + Math.min(pageSize, matching - shown) + " more";
    }

    input.addEventListener("input", function () {
      shown = pageSize;
      var url = new URL(window.location.href);
      if (input.value) url.searchParams.set("q", input.value); else url.searchParams.delete("q");
      window.history.replaceState(window.history.state, "", url);
      update();
    });
    more.addEventListener("click", function () {
      shown += pageSize;
      update();
    });
    input.value = new URL(window.location.href).searchParams.get("q") || "";
    tools.hidden = false;
    update();
  }

  window.Atlas.widget("gallery", mount);
})();
