"""`multicloud estimate`: the IoT example's monthly cost on every target, checked against figures
computed by hand from the price tables the providers ship (providers/*/multicloud_*/prices.yaml),
overrides from a file, and clear errors for bad price files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multicloud.cli.main import main
from tests.helpers import sdks_loaded_by

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "iot-backend" / "multicloud.yaml")
HOURS = 730


def estimate(capsys: pytest.CaptureFixture[str], *args: str, spec: str = EXAMPLE) -> dict[str, Any]:
    assert main(["estimate", "-f", spec, "-o", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def by_target(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in report["targets"]}


def lines(target: dict[str, Any]) -> dict[str, float]:
    return {line["item"]: line["monthly"] for line in target["lines"]}


# Hand computation, AWS eu-west-1 (Fargate 0.04048/vCPU-h, 0.004445/GB-h; NLB 0.0252/h + 1 NLCU at
# 0.006/h; public IPv4 0.005/h; egress 0.09/GiB). db is excluded on aws. Fargate sizes: auth and
# registry 0.25 vCPU/512Mi -> (256, 512) = 0.25 vCPU, 0.5 GiB; broker and ingestion 0.5/1Gi -> (512, 1024).
AWS_AUTH = (0.25 * 0.04048 + 0.5 * 0.004445) * HOURS  # 0.0123425/h -> 9.010025
AWS_BROKER = (0.5 * 0.04048 + 1 * 0.004445) * HOURS  # 0.024685/h -> 18.02005
AWS_INGESTION = 2 * AWS_BROKER  # two replicas -> 36.0401
AWS_REGISTRY = AWS_AUTH  # -> 9.010025
AWS_NLB = (0.0252 + 1 * 0.006) * HOURS  # -> 22.776
AWS_IPS = (3 + 5) * 0.005 * HOURS  # 3 NLB zones + 5 task replicas -> 29.2
AWS_EGRESS = 100 * 0.09  # -> 9.0
AWS_TOTAL = 133.06  # 9.010025 + 18.02005 + 36.0401 + 9.010025 + 22.776 + 29.2 + 9.0 = 133.0562

# Azure westeurope (ACI 0.0000135/vCPU-s = 0.0486/h, 0.0000015/GB-s = 0.0054/h; group IP included;
# egress 0.087/GiB). One container group: ingestion runs 1 replica there (the example's override).
AZURE_AUTH = (0.25 * 0.0486 + 0.5 * 0.0054) * HOURS  # 0.01485/h -> 10.8405
AZURE_BROKER = (0.5 * 0.0486 + 1 * 0.0054) * HOURS  # 0.0297/h -> 21.681
AZURE_TOTAL = 73.74  # 10.8405 + 21.681 (broker) + 21.681 (ingestion) + 10.8405 (registry) + 8.7 = 73.743

# GCP europe-west1 (Cloud Run instance-based 0.000018/vCPU-s = 0.0648/h, 0.000002/GiB-s = 0.0072/h;
# egress 0.12/GiB). The provider gives every service 1 vCPU there (rules.with_cpu_floor, the plan notes why).
GCP_AUTH = (1 * 0.0648 + 0.5 * 0.0072) * HOURS  # 1 CPU on gcp (the broker long-polls it): 0.0684/h -> 49.932
GCP_BROKER = (1 * 0.0648 + 1 * 0.0072) * HOURS  # 0.072/h -> 52.56
GCP_REGISTRY = (1 * 0.0648 + 0.5 * 0.0072) * HOURS  # 0.0684/h -> 49.932
GCP_TOTAL = 269.54  # 49.932 + 52.56 + 2 * 52.56 (ingestion) + 49.932 + 12.0 = 269.544


def test_the_example_on_every_target_matches_the_hand_computation(capsys: pytest.CaptureFixture[str]) -> None:
    report = by_target(estimate(capsys))
    assert list(report) == ["local", "aws", "azure", "gcp"]
    assert report["local"]["total"] == 0 and all(v == 0 for v in lines(report["local"]).values())
    aws = lines(report["aws"])
    assert aws == {
        "service auth": round(AWS_AUTH, 2), "service broker": round(AWS_BROKER, 2),
        "service ingestion": round(AWS_INGESTION, 2), "service registry": round(AWS_REGISTRY, 2),
        "load balancer": round(AWS_NLB, 2), "public IPs": round(AWS_IPS, 2), "egress": AWS_EGRESS,
    }
    assert report["aws"]["total"] == AWS_TOTAL
    azure = lines(report["azure"])
    assert azure == {
        "service auth": round(AZURE_AUTH, 2), "service broker": round(AZURE_BROKER, 2),
        "service ingestion": round(AZURE_BROKER, 2), "service registry": round(AZURE_AUTH, 2),
        "public IPs": 0.0, "egress": 8.7,
    }
    assert report["azure"]["total"] == AZURE_TOTAL
    gcp = lines(report["gcp"])
    assert gcp == {
        "service auth": round(GCP_AUTH, 2), "service broker": round(GCP_BROKER, 2),
        "service ingestion": round(2 * GCP_BROKER, 2), "service registry": round(GCP_REGISTRY, 2), "egress": 12.0,
    }
    assert report["gcp"]["total"] == GCP_TOTAL
    ingestion = next(line for line in report["aws"]["lines"] if line["item"] == "service ingestion")
    assert ingestion | {"monthly": 0} == {"item": "service ingestion", "quantity": "0.5 vCPU, 1 GiB x 2, 730 h",
                                          "monthly": 0, "vcpu": 0.5, "memory_gib": 1.0, "replicas": 2, "hours": 730}
    assert report["aws"]["prices"] == {"region": "eu-west-1", "date": "2024-06", "currency": "USD",
                                       "source": report["aws"]["prices"]["source"], "hours_per_month": 730}


def test_one_table_with_prices_and_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "-f", EXAMPLE, "-t", "aws", "-t", "gcp"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Monthly estimate of iot-backend (100 GiB of egress assumed per target")
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["TARGET", "ITEM", "QUANTITY", "MONTHLY"]
    assert table[-1].split()[:2] == ["gcp", "total"] and table[-1].endswith("269.54 USD")
    assert any(row.startswith("aws     total") and row.endswith("133.06 USD") for row in table)
    assert not any(row.startswith(("local", "azure")) for row in table)
    assert "aws: aws-ecs eu-west-1, 2024-06, USD" in out and "gcp: gcp-cloudrun europe-west1, 2024-06" in out
    assert "every replica runs all month" in out
    assert "load balancer      1 Network Load Balancer + 1 capacity unit," in out


def test_a_price_file_overrides_the_shipped_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "aws-ecs:\n  vcpu_hour: 0.05\n  load_balancer: {capacity_units: 0}\n"
        "memory: {region: here, date: '2026-11', source: ours, vcpu_hour: 1, gib_hour: 0.5}\n"
    )
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(
        "name: shop\nservices:\n  web:\n    image: nginx\n    replicas: 2\n"
        "    resources: {cpu: 0.3, memory: 700Mi}\n"
        "    ports: [{name: http, port: 80, protocol: http, expose: public}]\n"
        "targets:\n  aws: {provider: aws-ecs, region: us-east-1}\n  mem: {provider: memory}\n"
    )
    report = by_target(estimate(capsys, "--prices", str(prices), "--egress-gib", "10", spec=str(spec)))
    # Fargate rounds 0.3 vCPU / 700Mi up to (512, 1024): 0.5 vCPU, 1 GiB; 2 replicas at the overriding 0.05
    assert lines(report["aws"])["service web"] == round(2 * HOURS * (0.5 * 0.05 + 1 * 0.004445), 2)  # 42.9897
    assert lines(report["aws"])["load balancer"] == round(0.0252 * HOURS, 2)  # no capacity unit now: 18.396
    assert lines(report["aws"])["egress"] == round(10 * 0.09, 2)
    assert report["aws"]["notes"][0] == (
        "prices are for eu-west-1; this target is in us-east-1 (give its prices with --prices)")
    # a whole table for a provider that ships none: memory at 1/vCPU-h and 0.5/GiB-h, 0.3 vCPU and 700/1024 GiB
    assert lines(report["mem"])["service web"] == round(2 * HOURS * (0.3 * 1 + 700 / 1024 * 0.5), 2)  # 937.0417
    assert report["mem"]["prices"]["source"] == "ours"


def test_a_target_without_prices_is_noted_or_refused_when_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text("name: shop\nservices:\n  web: {image: nginx}\ntargets:\n  mem: {provider: memory}\n"
                    "  local: {provider: docker}\n")
    report = by_target(estimate(capsys, spec=str(spec)))
    assert report["mem"]["total"] is None and "ships no price table" in report["mem"]["notes"][0]
    assert report["local"]["total"] == 0
    assert main(["estimate", "-f", str(spec), "-t", "mem"]) == 2
    assert "error: no price table for target 'mem' (provider 'memory' ships none)" in capsys.readouterr().err
    assert main(["estimate", "-f", str(spec), "-t", "nope"]) == 2
    assert "no target 'nope'" in capsys.readouterr().err


def test_bad_price_files_are_refused_at_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("aws-ecs:\n  vcpu_hour: -1\n  vcpu_hr: 2\naws-ec2: {}\nmemory: {region: x}\n")
    assert main(["estimate", "-f", EXAMPLE, "--prices", str(prices)]) == 2
    err = capsys.readouterr().err
    assert f"{prices}:2:3: aws-ecs.vcpu_hour: Input should be greater than or equal to 0" in err
    assert f"{prices}:3:3: aws-ecs.vcpu_hr: Extra inputs are not permitted" in err
    assert f"{prices}:4:1: aws-ec2: no installed provider is named 'aws-ec2'" in err
    assert "Traceback" not in err
    prices.write_text("aws-ecs: [1, 2]\n")
    assert main(["estimate", "-f", EXAMPLE, "--prices", str(prices)]) == 2
    assert f"{prices}:1:1: aws-ecs: give a mapping of price fields" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["estimate", "-f", EXAMPLE, "--egress-gib", "-1"])
    assert "is not an amount of GiB" in capsys.readouterr().err


def test_estimate_imports_no_cloud_sdk() -> None:
    assert sdks_loaded_by(["estimate", "-f", EXAMPLE, "-o", "json"]) == []
