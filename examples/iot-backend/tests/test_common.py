"""The services' shared package without Docker: where secrets come from, and broker URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from iot_common.env import required_secret, secret
from iot_common.mqtt_url import BrokerUrl


def test_a_secret_comes_from_its_variable_first_then_the_file_it_names(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("from-file\n", encoding="utf-8")
    monkeypatch.setenv("IOT_COMMON_TOKEN_FILE", str(tmp_path / "token"))
    assert secret("IOT_COMMON_TOKEN") == "from-file"
    monkeypatch.setenv("IOT_COMMON_TOKEN", "from-env")
    assert secret("IOT_COMMON_TOKEN") == "from-env"


def test_a_missing_or_empty_secret_is_none_and_a_required_one_exits_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    monkeypatch.setenv("IOT_COMMON_EMPTY_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("IOT_COMMON_GONE_FILE", str(tmp_path / "absent"))
    assert secret("IOT_COMMON_EMPTY") is None and secret("IOT_COMMON_GONE") is None
    with pytest.raises(SystemExit, match=r"^auth: IOT_COMMON_GONE \(or IOT_COMMON_GONE_FILE\) must be set$"):
        required_secret("auth", "IOT_COMMON_GONE")


def test_broker_urls_give_transport_tls_and_default_ports() -> None:
    assert BrokerUrl.parse("mqtt://broker") == BrokerUrl("broker", 1883, "tcp", False, "")
    assert BrokerUrl.parse("mqtts://b:9883") == BrokerUrl("b", 9883, "tcp", True, "")
    assert BrokerUrl.parse("wss://b.example") == BrokerUrl("b.example", 443, "websockets", True, "/mqtt")
    assert BrokerUrl.parse("ws://b:8080/x") == BrokerUrl("b", 8080, "websockets", False, "/x")
    with pytest.raises(ValueError, match="broker URL must be"):
        BrokerUrl.parse("http://b")
