"""A recipe run again into the same OUT re-runs the step that reads --data when the data file's content changed."""

from __future__ import annotations

import yaml

from captune.recipe import load_recipe, run_recipe


def test_changed_data_content_reruns_the_step_that_reads_it(tmp_path):
    recipe_file = tmp_path / "t.yaml"
    body = {"name": "t", "about": "a test", "inputs": {"truth": "a truth file"},
            "steps": [{"name": "a", "run": "cmd-a {data}"}, {"name": "b", "run": "cmd-b {truth}"}]}
    recipe_file.write_text("# captune recipe run t\n" + yaml.safe_dump(body, sort_keys=False))
    recipe = load_recipe(recipe_file)
    data, truth, out = tmp_path / "posts.jsonl", tmp_path / "truth.jsonl", tmp_path / "out"
    data.write_text('{"image": "a.jpg"}\n')
    truth.write_text('{"x": 1}\n')
    ran: list[list[str]] = []

    def again() -> list[str]:
        ran.clear()
        run_recipe(recipe, str(data), out, overrides=[f"truth={truth}"], execute=ran.append, log=lambda _: None)
        return [a[0] for a in ran]

    assert again() == ["cmd-a", "cmd-b"]
    assert again() == []  # nothing changed: both skipped
    truth.write_text('{"x": 2}\n')
    assert again() == ["cmd-b"]
    data.write_text('{"image": "b.jpg"}\n')
    assert again() == ["cmd-a", "cmd-b"]


def test_a_folder_given_as_an_input_counts_by_its_path(tmp_path):
    recipe_file = tmp_path / "t.yaml"
    body = {"name": "t", "about": "a test", "inputs": {"photos": "a folder"},
            "steps": [{"name": "a", "run": "cmd-a {photos}"}]}
    recipe_file.write_text("# captune recipe run t\n" + yaml.safe_dump(body, sort_keys=False))
    recipe = load_recipe(recipe_file)
    photos = tmp_path / "photos"
    photos.mkdir()
    ran: list[list[str]] = []
    run_recipe(recipe, "d", tmp_path / "out", overrides=[f"photos={photos}"], execute=ran.append, log=lambda _: None)
    (photos / "new.jpg").write_bytes(b"x")
    run_recipe(recipe, "d", tmp_path / "out", overrides=[f"photos={photos}"], execute=ran.append, log=lambda _: None)
    assert ran == [["cmd-a", str(photos)]]
