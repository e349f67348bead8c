"""The layout validator (pure): what the designer may save, and the path a refusal names."""

from __future__ import annotations

import copy
import json

import pytest

from chronotrack.display.layouts import (FIELD_KINDS, MAX_FIELDS, LayoutError, image_ids, parse_layout_text,
                                         validate_layout)


def field(**changes):
    base = {"kind": "name", "x": 5, "y": 10, "w": 50, "h": 20, "size": 8, "weight": 700, "color": "#FFFFFF",
            "align": "left", "image_id": None, "text": ""}
    return {**base, **changes}


def layout(**changes):
    base = {"version": 1, "aspect": "16:9", "background": {"color": "#0b1220", "image_id": None}, "font": "sans",
            "fields": [field(), field(kind="time", x=60, y=70, w=40, h=30)]}
    return {**base, **changes}


def refusal(value) -> LayoutError:
    with pytest.raises(LayoutError) as caught:
        validate_layout(value)
    return caught.value


def test_a_good_layout_comes_back_clean_with_colours_in_lower_case():
    clean = validate_layout(layout())
    assert clean["fields"][0]["color"] == "#ffffff"
    assert clean["fields"][1] == {**field(kind="time", x=60.0, y=70.0, w=40.0, h=30.0), "color": "#ffffff",
                                  "size": 8.0}
    assert clean["background"] == {"color": "#0b1220", "image_id": None}
    assert validate_layout(clean) == clean  # what is saved validates again unchanged


def test_every_allowed_field_kind_is_accepted():
    fields = [field(kind=kind, y=index * 2, h=2, image_id=7 if kind == "image" else None)
              for index, kind in enumerate(FIELD_KINDS)]
    assert [f["kind"] for f in validate_layout(layout(fields=fields))["fields"]] == list(FIELD_KINDS)


@pytest.mark.parametrize("change, path", [
    ({"x": 101}, "fields[1].x"),
    ({"x": -1}, "fields[1].x"),
    ({"y": "10"}, "fields[1].y"),
    ({"w": 0}, "fields[1].w"),
    ({"x": 70, "w": 40}, "fields[1].w"),  # past the right edge
    ({"y": 90, "h": 20}, "fields[1].h"),  # past the bottom edge
    ({"x": True}, "fields[1].x"),
    ({"size": 0.5}, "fields[1].size"),
    ({"size": 80}, "fields[1].size"),
    ({"weight": 500}, "fields[1].weight"),
    ({"color": "red"}, "fields[1].color"),
    ({"color": "#fff"}, "fields[1].color"),
    ({"color": "#12345g"}, "fields[1].color"),
    ({"align": "justify"}, "fields[1].align"),
    ({"kind": "script"}, "fields[1].kind"),
    ({"kind": "image", "image_id": None}, "fields[1].image_id"),
    ({"kind": "bib", "image_id": 3}, "fields[1].image_id"),
    ({"image_id": -3, "kind": "image"}, "fields[1].image_id"),
    ({"text": "x" * 201}, "fields[1].text"),
    ({"text": "line\nbreak"}, "fields[1].text"),
    ({"onclick": "alert(1)"}, "fields[1].onclick"),
])
def test_a_bad_field_is_refused_naming_its_path(change, path):
    value = layout()
    value["fields"][1] = field(**change)
    assert refusal(value).path == path


@pytest.mark.parametrize("change, path", [
    ({"version": 2}, "version"),
    ({"version": True}, "version"),
    ({"aspect": "4:3"}, "aspect"),
    ({"font": "Comic Sans MS"}, "font"),
    ({"font": "url(https://fonts.example/x.woff2)"}, "font"),
    ({"background": {"color": "black", "image_id": None}}, "background.color"),
    ({"background": {"color": "#000000", "image_id": "5"}}, "background.image_id"),
    ({"background": {"color": "#000000", "url": "https://elsewhere.example/x.png"}}, "background.url"),
    ({"fields": {}}, "fields"),
    ({"script": "x"}, "script"),
])
def test_a_bad_setting_of_the_whole_layout_is_refused_naming_it(change, path):
    assert refusal(layout(**change)).path == path


def test_at_most_forty_fields():
    fields = [field(y=0, h=1)] * MAX_FIELDS
    assert len(validate_layout(layout(fields=fields))["fields"]) == MAX_FIELDS
    assert refusal(layout(fields=fields + [field()])).path == "fields"


def test_json_over_32_kb_is_refused_before_it_is_parsed():
    big = json.dumps(layout()) + " " * (32 * 1024)
    with pytest.raises(LayoutError) as caught:
        parse_layout_text(big)
    assert caught.value.path == "layout" and "32 KB" in caught.value.message


def test_a_layout_padded_with_long_text_in_fields_is_refused_by_size():
    fields = [field(text="é" * 200, y=0, h=1) for _ in range(40)]
    value = layout(fields=fields)
    assert len(json.dumps(value)) > 32 * 1024
    assert refusal(value).path == "layout"


def test_not_json_and_not_an_object_are_refused():
    with pytest.raises(LayoutError):
        parse_layout_text("{not json")
    assert refusal([]).path == "layout"
    assert refusal(None).path == "layout"


def test_image_ids_lists_the_background_and_image_fields():
    value = layout(background={"color": "#000000", "image_id": 4},
                   fields=[field(kind="image", image_id=9), field(kind="logo", image_id=11), field()])
    assert image_ids(validate_layout(value)) == {4, 9, 11}


def test_the_input_is_not_changed():
    value = layout()
    before = copy.deepcopy(value)
    validate_layout(value)
    assert value == before


def test_the_image_urls_the_api_adds_may_come_back_and_are_dropped():
    served = {**layout(), "images": {"4": "/images/" + "a" * 64 + ".png"}}
    assert "images" not in validate_layout(served)
