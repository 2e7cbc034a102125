"""What the shims add beyond Prefect 1's own tests: the Prefect 1 user config's
``[context.secrets]``, the Prefect 1 task arguments mapped onto Prefect 3 (and
refused where Prefect 3 cannot honour them), errors catchable both ways, and
every returned value registered with the masker."""

from __future__ import annotations

import json
import os
import warnings
from datetime import timedelta
from pathlib import Path

import pytest

from authchain import ConfigError, SecretNotFound, masking
from authchain.testing import canary
from secret_tasks.prefect1 import AWSSecretsManager, EnvVarSecret, PrefectSecret
from tests.secret_tasks.prefect1.conftest import LocalSecrets

# -- [context.secrets] of the Prefect 1 user config ------------------------------------------


def test_context_secrets_of_the_user_config_are_read(prefect1_user_config: Path) -> None:
    token, field = canary(), canary()
    prefect1_user_config.parent.mkdir(parents=True)
    prefect1_user_config.write_text(
        "[context.secrets]\n"
        f'API_TOKEN = "{token}"\n'
        "RETRIES = 3\n"
        f'JSON_TEXT = \'{{"x": "{field}"}}\'\n'
        f'AWS_CREDENTIALS = {{ ACCESS_KEY = "AKIAFROMCONFIGTOML", SECRET_ACCESS_KEY = "{field}" }}\n'
    )
    before = prefect1_user_config.stat().st_mtime_ns
    assert PrefectSecret("API_TOKEN").run() == token
    assert PrefectSecret("RETRIES").run() == 3
    assert PrefectSecret("JSON_TEXT").run() == {"x": field}
    assert PrefectSecret("AWS_CREDENTIALS").run() == {
        "ACCESS_KEY": "AKIAFROMCONFIGTOML",
        "SECRET_ACCESS_KEY": field,
    }
    assert prefect1_user_config.stat().st_mtime_ns == before, "the file is read-only to authchain"
    for value in (token, field):
        assert masking.default_masker.mask(f"x {value} y") == "x *** y"


def test_the_variable_wins_over_the_file_as_in_prefect_1(
    prefect1_user_config: Path, local_secrets: LocalSecrets
) -> None:
    prefect1_user_config.parent.mkdir(parents=True)
    prefect1_user_config.write_text('[context.secrets]\nNAME = "from-the-file"\n')
    with local_secrets(NAME="from-the-variable"):
        assert PrefectSecret("NAME").run() == "from-the-variable"
    assert PrefectSecret("NAME").run() == "from-the-file"


def test_explain_names_the_user_config(prefect1_user_config: Path) -> None:
    import authchain
    from authchain.backends.prefect.source import PrefectSource

    prefect1_user_config.parent.mkdir(parents=True)
    prefect1_user_config.write_text(f'[context.secrets]\nEXPLAINED = "{canary()}"\n')
    text = str(authchain.explain("EXPLAINED", chain=authchain.Chain([PrefectSource()])))
    assert "[context.secrets] EXPLAINED in" in text
    assert "Prefect 1 user config" in text


def test_a_broken_user_config_is_an_error_naming_the_file_not_a_value(prefect1_user_config: Path) -> None:
    value = canary()
    prefect1_user_config.parent.mkdir(parents=True)
    prefect1_user_config.write_text(f'[context.secrets]\nTOKEN = "{value}"\nTOKEN = "again"\n')
    with pytest.raises(ConfigError) as caught:
        PrefectSecret("TOKEN").run()
    assert str(prefect1_user_config) in str(caught.value)
    assert value not in str(caught.value)


def test_without_a_user_config_nothing_is_read(prefect1_user_config: Path) -> None:
    assert not prefect1_user_config.exists()
    with pytest.raises(SecretNotFound):
        PrefectSecret("NOT_ANYWHERE").run()


# -- errors: Prefect 1's ValueError and authchain's SecretNotFound at once ------------------


def test_a_missing_secret_is_both_value_error_and_secret_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P1_ABSENT", raising=False)
    for task in (PrefectSecret("P1_ABSENT"), EnvVarSecret("P1_ABSENT", raise_if_missing=True)):
        with pytest.raises(ValueError) as caught:  # noqa: PT011 - the type is the point
            task.run()
        assert isinstance(caught.value, SecretNotFound)
        assert "Attempted sources" in str(caught.value)


# -- Prefect 1 task arguments → Prefect 3 ----------------------------------------------------


def test_prefect_1_task_arguments_map_onto_the_prefect_3_task() -> None:
    task = AWSSecretsManager(
        "p1/mapped",
        name="read-token",
        tags=["secrets", "p1"],
        max_retries=2,
        retry_delay=timedelta(seconds=5),
        timeout=timedelta(minutes=1),
        log_stdout=True,
        task_run_name="token-{secret}",
    )
    assert (task.name, task.tags, task.max_retries, task.retry_delay) == (
        "read-token",
        {"secrets", "p1"},
        2,
        timedelta(seconds=5),
    )
    prefect_task = task.as_prefect_task()
    assert prefect_task.name == "read-token"
    assert prefect_task.retries == 2
    assert prefect_task.retry_delay_seconds == 5.0
    assert prefect_task.timeout_seconds == 60
    assert prefect_task.tags == {"secrets", "p1"}
    assert prefect_task.log_prints is True
    assert prefect_task.persist_result is False


@pytest.mark.parametrize(
    ("argument", "value", "says"),
    [
        ("result", object(), "not configurable"),
        ("target", "{task_name}.txt", "never persisted"),
        ("cache_for", timedelta(hours=1), "never cached"),
        ("trigger", lambda edges: True, "no triggers"),
        ("state_handlers", [lambda task, old, new: new], "on_completion"),
        ("on_failure", lambda task, state: None, "on_failure_hooks"),
        ("retry_on", ValueError, "retry_condition_fn"),
    ],
)
def test_what_prefect_3_cannot_honour_is_refused(argument: str, value: object, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        PrefectSecret("X", **{argument: value})


def test_prefect_1_argument_checks_are_kept() -> None:
    with pytest.raises(ValueError, match="retry_delay"):
        PrefectSecret("X", max_retries=1)
    with pytest.raises(ValueError, match="max_retries"):
        PrefectSecret("X", retry_delay=timedelta(seconds=1))
    with pytest.raises(TypeError, match="not a string"):
        PrefectSecret("X", tags="secrets")


def test_checkpoint_true_is_ignored_with_a_warning_as_prefect_1_ignored_it() -> None:
    with pytest.warns(UserWarning, match="never checkpointed"):
        task = PrefectSecret("X", checkpoint=True)
    assert task.checkpoint is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PrefectSecret("X", checkpoint=False).checkpoint is False


def test_prefect_3_hooks_are_passed_under_another_name() -> None:
    def hook(task: object, task_run: object, state: object) -> None:
        return None

    prefect_task = PrefectSecret("X", on_failure_hooks=[hook]).as_prefect_task()
    assert prefect_task.on_failure_hooks == [hook]


# -- values are plain, and registered with the masker -----------------------------------------


def test_plain_values_are_registered_with_the_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, inner = canary(), canary()
    monkeypatch.setenv("P1_PLAIN", plain)
    monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__P1_DOC", json.dumps({"inner": inner}))
    assert EnvVarSecret("P1_PLAIN").run() == plain
    assert PrefectSecret("P1_DOC").run() == {"inner": inner}
    assert type(EnvVarSecret("P1_PLAIN").run()) is str
    text = f"{plain} and {inner}"
    assert masking.default_masker.mask(text) == "*** and ***"
    assert os.environ["P1_PLAIN"] == plain, "reading never changes the environment"


def test_legacy_env_false_reads_neither_variables_nor_the_user_config(
    prefect1_user_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import authchain
    from authchain.backends.prefect.source import PrefectSource

    prefect1_user_config.parent.mkdir(parents=True)
    prefect1_user_config.write_text(f'[context.secrets]\nFILE_ONLY = "{canary()}"\n')
    monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__VAR_ONLY", canary())
    chain = authchain.Chain([PrefectSource(legacy_env=False)])
    for name in ("FILE_ONLY", "VAR_ONLY"):
        with pytest.raises(SecretNotFound):
            chain.resolve(name)
