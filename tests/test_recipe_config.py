"""Recipe configuration: flags, files, defaults, and the errors for unknown keys and wrong types."""

import json

import pytest

from tfkd.recipes import compress, config, runner


def test_defaults_flags_and_file_priority(tmp_path):
    cfg, opts = config.parse_config(compress.Config, [])
    assert cfg.dataset == "digits" and cfg.alpha == 0.5 and cfg.export is True and opts["resume"] is None
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.9\nepochs: 7\nsweep_temperatures: [2, 3.5]\nexport: false\n")
    cfg, _ = config.parse_config(compress.Config, ["--config", str(path), "--epochs", "3", "--sweep-alphas", "0.1,0.2"])
    assert cfg.alpha == 0.9  # from the file
    assert cfg.epochs == 3  # the flag overrides the file
    assert cfg.sweep_temperatures == [2.0, 3.5] and cfg.sweep_alphas == [0.1, 0.2]
    assert cfg.export is False
    cfg, _ = config.parse_config(compress.Config, ["--no-export", "--n-train", "100"])
    assert cfg.export is False and cfg.n_train == 100


def test_unknown_keys_and_wrong_types_are_refused_before_training(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"alpah": 0.3}))
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['alpah'\].*valid keys"):
        config.parse_config(compress.Config, ["--config", str(bad)])
    bad.write_text(json.dumps({"epochs": "many"}))
    with pytest.raises(ValueError, match=r"'epochs'='many' has type str; expected int"):
        config.parse_config(compress.Config, ["--config", str(bad)])
    bad.write_text(json.dumps({"epochs": 2.5}))
    with pytest.raises(ValueError, match="expected int"):
        config.parse_config(compress.Config, ["--config", str(bad)])
    with pytest.raises(ValueError, match=r"alpha=1.5 must be in \[0, 1\]"):
        config.parse_config(compress.Config, ["--alpha", "1.5"])
    with pytest.raises(ValueError, match="temperature=0.0 must be > 0"):
        config.parse_config(compress.Config, ["--temperature", "0"])
    with pytest.raises(ValueError, match="quantize='int4'"):
        config.parse_config(compress.Config, ["--quantize", "int4"])
    weird = tmp_path / "c.toml"
    weird.write_text("a = 1")
    with pytest.raises(ValueError, match="expected a .yaml, .yml or .json"):
        config.parse_config(compress.Config, ["--config", str(weird)])


def test_yaml_is_data_not_code(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("dataset: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="could not determine a constructor|ConstructorError"):
        config.parse_config(compress.Config, ["--config", str(evil)])


def test_cli_errors_are_clear_and_exit_2(tmp_path, capsys):
    assert runner.main(["compress", "--alpha", "7"]) == 2
    assert "alpha=7.0 must be in [0, 1]" in capsys.readouterr().err
    assert runner.main(["nope"]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    assert runner.main(["--resume", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert runner.main([]) == 0
    assert "compress" in capsys.readouterr().out


@pytest.mark.parametrize("recipe", sorted(runner.RECIPES))
def test_every_recipe_checks_its_shared_knobs_once_with_the_value(recipe):
    """Epoch counts, temperature, alpha and val_fraction are checked by one rule, whichever recipe declares them."""
    import dataclasses
    import importlib

    cls = importlib.import_module(runner.RECIPES[recipe]).Config
    names = {f.name for f in dataclasses.fields(cls)}
    bad = {"temperature": (0.0, "must be > 0"), "alpha": (1.5, r"must be in \[0, 1\]"),
           "val_fraction": (0.7, r"must be in \(0, 0.5\)")}
    bad.update({n: (-1, r"must be >= 0 \(a number of epochs\)") if n == "finetune_epochs" else
                (0, r"must be > 0 \(a number of epochs\)") for n in names if n.endswith("epochs")})
    checked = [n for n in bad if n in names]
    assert any(n.endswith("epochs") for n in checked), f"{recipe} has no epochs field"
    for name in checked:
        value, message = bad[name]
        with pytest.raises(ValueError, match=rf"^{name}={value} {message}"):
            config.from_dict(cls, {name: value})


@pytest.mark.parametrize("recipe, args, what", [
    ("compress", ["--methods", "auto,kd"], "--methods auto"),
    ("tune", [], "the student search"),
    ("takd", ["--ta", "auto"], "--ta auto"),
])
def test_a_keras_tuner_search_under_a_strategy_is_refused_before_any_work(recipe, args, what, tmp_path, capsys):
    out = tmp_path / "run"
    assert runner.main([recipe, *args, "--strategy", "mirrored", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{what} is a keras-tuner search, which does not run under --strategy mirrored yet" in err
    assert "run it with --strategy none" in err and not out.exists()
