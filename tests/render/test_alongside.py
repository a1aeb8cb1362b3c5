"""One prompt on several models: a prompt `alongside` another is shown on that prompt's page, switchable in place."""

from __future__ import annotations

import json

import pytest
from fakesite import put_alongside

from generator.render import RenderError, render_site
from generator.render.alongside import page_groups
from generator.render.load import load_index
from generator.spec.bounded_yaml import SpecError
from generator.spec.prompt_set import load_prompt_set


def test_the_partner_is_a_second_view_on_the_owners_page_and_has_no_page_or_card_of_its_own(site):
    put_alongside(site / "generated")
    result = render_site(site / "generated", site)
    generated = site / "generated"
    assert [p.name for p in result.pages] == ["red-cat.md"]  # two-dogs has no page
    page = (generated / "pages" / "red-cat.md").read_text()
    assert page.count('role="tabpanel"') == 2 and page.count('role="tab"') == 2
    # each panel holds its own model's scrubber, final image and settings, the page's own first
    first, second = page.index('id="model-red-cat"'), page.index('id="model-two-dogs"')
    assert first < second
    assert "testing:tiny-sd (latent space)" in page and "embedded:shapes-latent (pixel space)" in page
    assert page.count("## Final image") == 2 and page.count("## Settings") == 2
    assert 'data-group="traj-two-dogs"' in page[second:] and 'data-group="traj-red-cat"' in page[first:second]
    gallery = (generated / "gallery.md").read_text()
    assert gallery.count('<a class="atlas-card') == 1 and "2 models</span>" in gallery
    assert "pages/two-dogs.html" not in gallery
    # the partner's judged image is listed under the page that shows it
    quality = json.loads((generated / "quality.json").read_text())
    pages = {figure["page"] for figure in quality["figures"] if figure["manifest"] == "prompts/two-dogs.json"}
    assert pages == {"pages/red-cat.html"}
    # its own embeds stay (a figure can still be embedded alone)
    assert (site / "embed" / "two-dogs-trajectory.html").is_file()


def test_one_view_renders_as_before_without_a_switch(site):
    render_site(site / "generated", site)
    page = (site / "generated" / "pages" / "red-cat.md").read_text()
    assert "atlas-model-switch" not in page and 'role="tabpanel"' not in page


def test_a_partner_whose_owner_was_not_baked_keeps_its_own_page(site):
    put_alongside(site / "generated")
    manifest_path = site / "generated" / "prompts" / "two-dogs.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["alongside"] = "not-baked"
    manifest_path.write_text(json.dumps(manifest))
    result = render_site(site / "generated", site)
    assert sorted(p.name for p in result.pages) == ["red-cat.md", "two-dogs.md"]


@pytest.mark.parametrize("change, message", [
    ({"text": "a different prompt"}, "is not"),
    ({"model": "testing:tiny-sd"}, "on the same model"),
])
def test_a_partner_must_be_the_same_prompt_on_another_model(site, change, message):
    put_alongside(site / "generated", **change)
    with pytest.raises(RenderError, match=message):
        render_site(site / "generated", site)


def test_groups_keep_index_order_and_refuse_chains(site):
    put_alongside(site / "generated")
    groups = page_groups(load_index(site / "generated").prompts)
    assert [(g.owner.id, [o.id for o in g.others]) for g in groups] == [("red-cat", ["two-dogs"])]
    path = site / "generated" / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    manifest["alongside"] = "two-dogs"
    path.write_text(json.dumps(manifest))
    with pytest.raises(RenderError, match="itself shown alongside"):
        page_groups(load_index(site / "generated").prompts)


def test_the_prompt_file_key_is_a_slug_and_not_the_prompt_itself(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("model: testing:tiny-sd\nprompts:\n  - id: a-latent\n    text: a cat\n    alongside: a\n")
    spec = load_prompt_set(path).prompts[0]
    assert spec.alongside == "a"
    plain = tmp_path / "q.yaml"
    plain.write_text("model: testing:tiny-sd\nprompts:\n  - id: a-latent\n    text: a cat\n")
    assert spec.spec_hash("m") != load_prompt_set(plain).prompts[0].spec_hash("m")  # the manifest changes with it
    for bad, words in (("a-latent", "the prompt itself"), ("Not A Slug", "slug")):
        path.write_text(f"model: testing:tiny-sd\nprompts:\n  - id: a-latent\n    text: a cat\n    alongside: {bad}\n")
        with pytest.raises(SpecError, match=words) as error:
            load_prompt_set(path)
        assert str(error.value).startswith(f"{path}:5:")
