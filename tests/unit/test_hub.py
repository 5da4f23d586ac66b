"""Where weights come from: a local directory, the Hugging Face cache, then the hub unless offline,
and errors that tell a missing model from a broken cache and from a refused (gated) repository."""

import httpx
import pytest
from huggingface_hub.errors import GatedRepoError

from captune import hub
from captune.errors import ModelNotFoundError


@pytest.fixture
def online(monkeypatch):
    """No offline switch anywhere (the test session sets HF_HUB_OFFLINE=1, read by huggingface_hub at import)."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


@pytest.fixture
def network(monkeypatch):
    """Record every hub request instead of sending it; the hub answers."""
    calls = []
    monkeypatch.setattr(httpx, "head", lambda url, timeout: calls.append(url))
    return calls


class Loader:
    """A stand-in ``from_pretrained``: fails from the cache, then as ``hub_error`` says (or succeeds)."""

    def __init__(self, hub_error=None):
        self.calls, self.hub_error = [], hub_error

    def __call__(self, source, local_files_only=False, **kwargs):
        self.calls.append("cache" if local_files_only else "hub")
        if local_files_only:
            raise OSError(f"{source} is not in the cache")
        if self.hub_error:
            raise self.hub_error
        return "loaded"


def gated(source="org/gated"):
    response = httpx.Response(401, request=httpx.Request("GET", f"https://huggingface.co/{source}/config.json"))
    try:
        raise GatedRepoError(f"Access to model {source} is restricted", response=response)
    except GatedRepoError as cause:
        try:
            raise OSError(f"You are trying to access a gated repo: {source}") from cause
        except OSError as err:
            return err


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On"])
def test_every_truthy_value_of_hf_hub_offline_is_offline(online, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.offline()


@pytest.mark.parametrize("value", ["0", "false", "no", "off", ""])
def test_other_values_are_not_offline(online, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert not hub.offline()


def test_transformers_offline_counts_when_hf_hub_offline_is_unset(online, monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "yes")
    assert hub.offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # huggingface_hub reads HF_HUB_OFFLINE first when it is set
    assert not hub.offline()


def test_offline_tries_only_the_cache_and_keeps_the_cause(online, network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    load = Loader()
    with pytest.raises(ModelNotFoundError) as err:
        hub.from_pretrained(load, "org/absent", what="AutoModel")
    assert load.calls == ["cache"] and network == []
    assert "not on this machine" in str(err.value) and "offline" in str(err.value)
    assert isinstance(err.value.__cause__, OSError) and "not in the cache" in str(err.value.__cause__)


def test_online_the_hub_is_tried_after_the_cache(online, network):
    load = Loader()
    assert hub.from_pretrained(load, "org/model") == "loaded"
    assert load.calls == ["cache", "hub"] and len(network) == 1


def test_an_unreachable_hub_is_not_retried(online, monkeypatch):
    def unreachable(url, timeout):
        raise httpx.ConnectError("no route to host")

    monkeypatch.setattr(httpx, "head", unreachable)
    load = Loader()
    with pytest.raises(ModelNotFoundError, match="could not be reached"):
        hub.from_pretrained(load, "org/model")
    assert load.calls == ["cache"]


def test_a_gated_repository_is_not_reported_as_missing(online, network):
    refused = gated()
    with pytest.raises(ModelNotFoundError) as err:
        hub.from_pretrained(Loader(hub_error=refused), "org/gated")
    message = str(err.value)
    assert "refused access" in message and "hf auth login" in message and "not on this machine" not in message
    assert err.value.__cause__ is refused


def test_a_corrupt_cached_copy_is_not_reported_as_missing(online, monkeypatch, tmp_path):
    snapshot = tmp_path / "hub" / "models--org--broken" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--broken" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--broken" / "refs" / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        hub.from_pretrained(Loader(), "org/broken", what="AutoModel")
    message = str(err.value)
    assert "incomplete or corrupt" in message and str(snapshot) in message
    assert "not on this machine" not in message


def test_a_local_directory_is_loaded_directly(tmp_path):
    with pytest.raises(ModelNotFoundError, match="from the local directory") as err:
        hub.from_pretrained(Loader(hub_error=OSError("no config.json")), str(tmp_path))
    assert "no config.json" in str(err.value)
    seen = []
    assert hub.from_pretrained(lambda src, **kw: seen.append(kw) or "ok", str(tmp_path)) == "ok"
    assert seen == [{}]  # no local_files_only for a folder


def test_captioner_loading_honours_a_truthy_offline_value_other_than_1(online, network, monkeypatch):
    from captune.models.loading import load_captioner

    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    with pytest.raises(ModelNotFoundError, match="offline") as err:
        load_captioner("blip2-opt-2.7b")
    assert network == []  # the hub was not contacted
    assert "Salesforce/blip2-opt-2.7b" in str(err.value)


def test_captioner_loading_says_a_gated_repo_was_refused_and_keeps_the_cause(online, network, monkeypatch):
    import transformers

    from captune.models.loading import load_captioner

    refused = gated("Salesforce/blip2-opt-2.7b")

    def from_pretrained(source, local_files_only=False, **kwargs):
        raise OSError("not in the cache") if local_files_only else refused

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", from_pretrained)  # read first: the family
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", from_pretrained)
    with pytest.raises(ModelNotFoundError) as err:
        load_captioner("blip2-opt-2.7b")
    assert "refused access" in str(err.value) and err.value.__cause__ is refused
