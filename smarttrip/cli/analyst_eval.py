"""``smarttrip ope`` and ``smarttrip ab report``: evaluate policies and experiments from logs.

``ope`` estimates, from logs of the policies that ran, how a policy would have
done: a CSV policy table (any logs) or one of our models (``--policy FILE``
written by ``smarttrip replay --save-models``, or ``store:POLICY`` for each
segment's live model in Redis, ``store:POLICY@VERSION`` for a past version), per position with bootstrap intervals and
weight diagnostics. ``ab report`` compares the variants that served traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
import typer
from rich.table import Table

from bandit.ope_inputs import BanditLogs, RewardModelSpec
from bandit.ope_validation import OPEInputError
from smarttrip.cli.analyst import (
    BootstrapOpt,
    JsonOpt,
    LogsOpt,
    SinceOpt,
    UntilOpt,
    console,
    fail,
    input_records,
    write_json,
)
from stream.events import Example
from stream.model_store import ModelStoreError
from stream.settings import StreamSettings

ab_app = typer.Typer(help="A/B test reports.", no_args_is_help=True)


def _load_ours(
    logs: Path | None, bootstrap: str | None, since: str | None, until: str | None, target: str
) -> tuple[list[Example], BanditLogs]:
    from stream.examples_source import load_examples, logs_from_examples

    s = StreamSettings.from_env()
    records = input_records(logs, bootstrap, since, until, [s.topic_impressions, s.topic_interactions])
    examples, bad = load_examples(records, s)
    if bad:
        console.print(f"dead letters while reading: {dict(bad)}")
    if not examples:
        raise fail("no examples in the input")
    return examples, logs_from_examples(examples, target=target)  # type: ignore[arg-type]


def _model_scores(spec: str, data: BanditLogs, redis_url: str, namespace: str) -> npt.NDArray[np.float64]:
    from bandit import learner_from_bytes

    if data.phi is None:
        raise fail("--policy needs φ rows in the examples")
    if not spec.startswith("store:"):
        learner = learner_from_bytes(Path(spec).read_bytes())
        return learner.score_many(data.phi)
    from stream.model_store import ModelStore

    name, _, version = spec.removeprefix("store:").partition("@")
    if version and not version.isdigit():
        raise fail(f"--policy: version must be an integer in store:POLICY@VERSION, got {version!r}")
    store = ModelStore.from_url(redis_url, namespace=namespace)
    scores = np.zeros(len(data.reward))
    segments = np.array(data.segment)
    try:
        for segment in sorted(set(data.segment)):
            mask = segments == segment
            record = store.get(name, segment, int(version) if version else None)
            scores[mask] = learner_from_bytes(record.model_bytes).score_many(data.phi[mask])
    finally:
        store.close()
    return scores


def ope(
    logs: LogsOpt = None,
    bootstrap: BootstrapOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="ours (export / topics) or obd (Open Bandit Dataset CSV).")
    ] = "ours",
    item_context: Annotated[
        Path | None, typer.Option(help="OBD item_context.csv (number of actions).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Model file, or store:POLICY[@VERSION] per segment (ours).")
    ] = None,
    policy_table: Annotated[
        Path | None, typer.Option("--policy-table", help="CSV: one row per action, one column per position.")
    ] = None,
    epsilon: Annotated[
        float, typer.Option(help="Exploration of a --policy model (ε-greedy per position).")
    ] = 0.0,
    estimators: Annotated[
        str, typer.Option(help="Comma-separated: ipw,snipw,dm,dr,sndr.")
    ] = "ipw,snipw,dm,dr,sndr",
    reward_model: Annotated[
        str, typer.Option(help="logistic (cross-fitted), none, or a CSV reward table.")
    ] = "logistic",
    clip: Annotated[float | None, typer.Option(help="Clip importance weights at this value.")] = None,
    n_bootstrap: Annotated[int, typer.Option("--bootstrap-samples")] = 200,
    target: Annotated[str, typer.Option(help="ours: click (CTR) or reward.")] = "click",
    redis_url: Annotated[str, typer.Option(envvar="SMARTTRIP_REDIS_URL")] = "redis://127.0.0.1:6379/0",
    namespace: Annotated[str, typer.Option(envvar="SMARTTRIP_MODEL_NAMESPACE")] = "smarttrip",
    seed: int = 0,
    json_out: JsonOpt = None,
) -> None:
    """Off-policy estimates of a policy's CTR (per position) from logs of other policies."""
    from bandit.ope import evaluate
    from bandit.ope_inputs import model_policy_data, table_policy_data
    from bandit.ope_tables import read_table
    from stream.obd import read_obd

    names = [e.strip() for e in estimators.split(",") if e.strip()]
    if (policy is None) == (policy_table is None):
        raise fail("give exactly one of --policy or --policy-table")
    try:
        if fmt == "obd":
            if logs is None:
                raise fail("--format obd needs --logs CSV")
            data = read_obd(logs, item_context=item_context)
        elif fmt == "ours":
            _, data = _load_ours(logs, bootstrap, since, until, target)
        else:
            raise fail(f"--format: must be ours or obd, got {fmt!r}")
        rm: RewardModelSpec
        if reward_model == "logistic":
            rm = "logistic"
        elif reward_model == "none":
            rm = "none"
        else:
            rm = read_table(Path(reward_model), kind="reward")
        if policy_table is not None:
            table_in = read_table(policy_table, kind="policy")
            opedata = table_policy_data(data, table_in, reward_model=rm, seed=seed)
        else:
            assert policy is not None  # noqa: S101
            if isinstance(rm, np.ndarray):
                raise fail("--policy takes --reward-model logistic or none")
            scores = _model_scores(policy, data, redis_url, namespace)
            opedata = model_policy_data(data, scores, epsilon=epsilon, reward_model=rm, seed=seed)
        with console.status(f"estimating with {n_bootstrap} bootstrap samples…"):
            report = evaluate(opedata, names, clip=clip, n_bootstrap=n_bootstrap, seed=seed)
    except (OPEInputError, ValueError, OSError, ModelStoreError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"Off-policy estimates ({fmt}, {len(opedata):,} rows, clip={clip})")
    for col in ("estimator", "position", "estimate", "95% CI", "n"):
        table.add_column(col, justify="right")
    for e in report.estimates:
        table.add_row(e.estimator, "all" if e.position is None else str(e.position), f"{e.value:.4f}",
                      f"[{e.ci_low:.4f}, {e.ci_high:.4f}]", f"{e.n:,}")  # fmt: skip
    console.print(table)
    diag = Table(title="Importance weights")
    for col in ("position", "mean w", "max w", "ESS", "clipped"):
        diag.add_column(col, justify="right")
    for d in report.diagnostics:
        diag.add_row("all" if d.position is None else str(d.position), f"{d.mean_weight:.3f}", f"{d.max_weight:.2f}",
                     f"{d.ess:,.0f}", f"{d.clipped_fraction:.1%}")  # fmt: skip
    console.print(diag)
    logged = float(np.mean(data.reward))
    console.print(f"logged policy's mean reward: {logged:.4f}")
    write_json(json_out, {**report.to_dict(), "logged_mean_reward": logged, "format": fmt,
                           "actions": list(data.action_names) if policy_table is not None else None})  # fmt: skip


@ab_app.command("report")
def ab_report_cmd(
    logs: LogsOpt = None,
    bootstrap: BootstrapOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    control: Annotated[str | None, typer.Option(help="Control variant (default: rules).")] = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: Annotated[
        float | None, typer.Option(help="Relative lift to size the test for (e.g. 0.05).")
    ] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Write a chart here.")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Per-variant CTR and conversion, tests against the control, power, always-valid p-values."""
    from stream.ab_report import ab_report, as_dicts, plot_ab, ranking_by_group
    from stream.examples_source import load_examples

    s = StreamSettings.from_env()
    records = input_records(
        logs, bootstrap, since, until, [s.topic_impressions, s.topic_interactions, s.topic_examples]
    )
    examples, bad = load_examples(records, s)
    try:
        stats, comparisons = ab_report(
            examples, control=control, alpha=alpha, power=power, target_lift=target_lift
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    table = Table(title="Variants (unit: slate)")
    for col in ("variant", "slates", "item CTR", "slate CTR", "95% Wilson", "conversion", "95% Wilson "):
        table.add_column(col, justify="right")
    for v in stats:
        table.add_row(v.variant, f"{v.slates:,}", f"{v.item_ctr:.4f}", f"{v.ctr:.4f}", f"[{v.ctr_low:.4f}, {v.ctr_high:.4f}]",
                      f"{v.conversion:.4f}", f"[{v.conversion_low:.4f}, {v.conversion_high:.4f}]")  # fmt: skip
    console.print(table)
    comp = Table(title="Against the control")
    for col in ("variant", "metric", "Δ", "95% CI", "p", "always-valid p", "MDE", "still needed / arm"):
        comp.add_column(col, justify="right")
    for c in comparisons:
        comp.add_row(f"{c.variant} vs {c.control}", c.metric, f"{c.difference:+.4f}", f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
                     f"{c.p_value:.4f}", f"{c.always_valid_p:.4f}", f"{c.mde:.4f}", f"{c.still_needed_per_arm:,}")  # fmt: skip
    console.print(comp)
    ranking = ranking_by_group(examples)
    rank_table = Table(title="Ranking metrics (segment * = all)")
    for col in ("variant", "segment", "slates", "CTR", "MRR", "NDCG@10", "items shown", "diversity"):
        rank_table.add_column(col, justify="right")
    for variant, segment, m in ranking:
        rank_table.add_row(variant, segment, f"{m.slates:,}", f"{m.ctr:.4f}", f"{m.mrr:.4f}", f"{m.ndcg:.4f}",
                           f"{m.coverage_items:,}", "–" if m.diversity is None else f"{m.diversity:.3f}")  # fmt: skip
    console.print(rank_table)
    if bad:
        console.print(f"dead letters while reading: {dict(bad)}")
    if png is not None:
        plot_ab(stats, png)
        console.print(f"wrote {png}")
    write_json(json_out, {
        **as_dicts(stats, comparisons), "deadletters": dict(bad),
        "ranking": [{"variant": v, "segment": g, **m.as_dict()} for v, g, m in ranking],
    })  # fmt: skip
