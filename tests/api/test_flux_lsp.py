"""Every query text the Flux backend can send, checked by InfluxData's own Flux tooling.

`@influxdata/flux-lsp-node` is libflux (the parser and semantic checker inside InfluxDB 2.x)
compiled to WASM, with the real standard library: an undefined identifier, an unknown argument
or a string literal it refuses is reported as it would be by the server. `scripts/test` installs
it in the current target (`ensure_flux_lsp` in scripts/toolchain.sh) and names it in
`HA_INGESTOR_FLUX_LSP`; there this test must run. Elsewhere it runs when the package sits at
its default place and is skipped otherwise. All texts go to one Node.js process per module.

The organization never enters a query text (it travels as the `org` request parameter), so
the hostile names below are bucket names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.delivery import (
    Window,
)
from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.api.influx.delivery import (
    build_flux_delivery_query,
    build_flux_sample_query,
)
from custom_components.ha_ingestor.api.influx.flux import (
    build_refresh_query,
    build_validate_query,
    build_window_query,
)
from custom_components.ha_ingestor.api.influx.storage import (
    build_flux_cardinality_query,
    build_flux_storage_query,
)
from custom_components.ha_ingestor.api.influx.windows import Answer, WindowStore
from tests.api.test_names import ATTACKS, every_short_string
from tests.support.influx2_double import CompileError, FluxError, run_flux

if TYPE_CHECKING:
    from collections.abc import Iterable

LSP_ENV = "HA_INGESTOR_FLUX_LSP"
DEFAULT_MODULES = Path("/opt/flux-lsp/node_modules")
SCRIPT = Path(__file__).parents[1] / "support" / "flux_diagnostics.js"
NOW = datetime(2025, 11, 1, 16, 35, 7, 123456, tzinfo=UTC)
BUCKET = "home_assistant_events"
UNICODE_NAMES = ["日本語", "Ünïcödé bücket", "🚀 events", "e\u0301", "שלום", "a\u200db", "{}"]
SHORT_NAMES = every_short_string()

type Diagnostics = list[dict[str, object]]


def _queries() -> dict[str, str]:
    """Every text the backend sends: label -> Flux."""
    queries = {
        f"refresh {period.value}/{window.value}": build_refresh_query(BUCKET, period, window, NOW)
        for period in Period
        for window in TrendWindow
    }
    queries["validate"] = build_validate_query(BUCKET)
    # The incremental refresh's texts: a full recount and a steady refresh of every period.
    for period in Period:
        for window in TrendWindow:
            store = WindowStore(period, window)
            for step in range(2):
                plan = store.plan(NOW + step * timedelta(minutes=1))
                store.apply(plan, Answer())
                kind = "full" if plan.full else "steady"
                label = f"window {kind} {period.value}/{window.value}"
                queries[label] = build_window_query(BUCKET, plan, period)
    for name in [*ATTACKS, *UNICODE_NAMES]:
        refresh = build_refresh_query(name, Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        queries[f"refresh of bucket {name!r}"] = refresh
    for name in [*ATTACKS, *UNICODE_NAMES, *SHORT_NAMES]:
        queries[f"validate of bucket {name!r}"] = build_validate_query(name)
    # The storage figures' programs (api/influx/storage.py), measurement names as hostile as
    # buckets.
    for name in [BUCKET, *ATTACKS, *UNICODE_NAMES]:
        queries[f"storage of bucket {name!r}"] = build_flux_storage_query(name)
        queries[f"cardinality of measurement {name!r}"] = build_flux_cardinality_query(
            BUCKET, [name, "weather"]
        )
    window = Window(NOW - timedelta(minutes=20), NOW)
    for name in [BUCKET, *ATTACKS, *UNICODE_NAMES]:
        queries[f"delivery of bucket {name!r}"] = build_flux_delivery_query(name, window, 60)
    samples = [(name, NOW, '01JCONTEXT$\\"x') for name in ["light.kitchen", *ATTACKS]]
    queries["delivery samples"] = build_flux_sample_query(BUCKET, samples)
    return queries


QUERIES = _queries()
# The check must be able to fail: a misspelled function and a wrong argument name.
MISSPELLED = QUERIES["refresh 1h/5m"].replace("aggregateWindow(", "aggregateWindw(")
WRONG_ARGUMENT = QUERIES["validate"].replace("limit(n: 1)", "limit(count: 1)")
# What a bucket name gives written into a literal unescaped: many are not Flux at all.
RAW_LITERALS = [f'from(bucket: "{name}") |> range(start: -1m)' for name in SHORT_NAMES]


def _node_modules() -> Path:
    configured = os.environ.get(LSP_ENV)
    modules = Path(configured) if configured else DEFAULT_MODULES
    if (modules / "@influxdata" / "flux-lsp-node").is_dir() and shutil.which("node"):
        return modules
    if configured:
        pytest.fail(f"{LSP_ENV}={configured}, but Node.js or @influxdata/flux-lsp-node is missing")
    pytest.skip("@influxdata/flux-lsp-node is not installed (scripts/test installs it)")


def _check(modules: Path, texts: Iterable[str]) -> dict[str, Diagnostics]:
    unique = list(dict.fromkeys(texts))
    node = shutil.which("node") or "node"
    completed = subprocess.run(  # noqa: S603 - our own script, our own texts
        [node, str(SCRIPT), str(modules)],
        input=json.dumps(unique),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    answers = json.loads(completed.stdout)
    assert len(answers) == len(unique)
    return dict(zip(unique, answers, strict=True))


@pytest.fixture(scope="module")
def diagnostics() -> dict[str, Diagnostics]:
    """libflux's diagnostics of every text of this module, from one Node.js process."""
    modules = _node_modules()
    return _check(modules, [*QUERIES.values(), MISSPELLED, WRONG_ARGUMENT, *RAW_LITERALS])


def test_every_query_text_passes_the_real_parser_and_checker(
    diagnostics: dict[str, Diagnostics],
) -> None:
    assert len(QUERIES) > 1600
    refused = {label: diagnostics[text] for label, text in QUERIES.items() if diagnostics[text]}
    assert refused == {}


def test_the_check_flags_a_misspelled_function_and_a_wrong_argument(
    diagnostics: dict[str, Diagnostics],
) -> None:
    assert [d["message"] for d in diagnostics[MISSPELLED]] == [
        "undefined identifier aggregateWindw"
    ]
    messages = " / ".join(str(d["message"]) for d in diagnostics[WRONG_ARGUMENT])
    assert "unexpected argument count" in messages
    assert "missing required argument n" in messages
    for text in (MISSPELLED, WRONG_ARGUMENT):
        with pytest.raises(CompileError):
            run_flux(text, {}, 0)


def test_the_double_refuses_what_libflux_refuses(diagnostics: dict[str, Diagnostics]) -> None:
    refused_by_libflux = [text for text in RAW_LITERALS if diagnostics[text]]
    # Most of these names are no Flux literal at all: the comparison is not vacuous.
    assert len(refused_by_libflux) > len(RAW_LITERALS) // 2
    accepted_by_the_double = []
    for text in refused_by_libflux:
        try:
            run_flux(text, {}, 0)
        except CompileError:
            continue
        except FluxError:  # parsed and ran: only the bucket is missing
            accepted_by_the_double.append(text)
    assert accepted_by_the_double == []
