"""Train the person-matching model with Splink (DuckDB) and store it as data: `python -m registry.linkage.train`.

Splink estimates the Fellegi–Sunter parameters — the prior from deterministic rules, u by random sampling, m by
expectation maximisation in two blocked sessions (each estimates the comparisons its blocking does not fix) — on
a synthetic population (registry.linkage.synthetic). The thresholds are then chosen on that population's planted
truth: the upper one is the lowest match weight above which automatic links stay ≥ 99 % precise, the lower one
the highest weight above which ≥ 97 % of the planted duplicates are found (auto + review). The model is written to
registry/data/matching_model.json with a version; the registry loads it at start, never trains.

`batch_match` is the same model used for a whole population at once (the `matching` bench: 10^6 persons).
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator

from registry.domain import matching
from registry.linkage import synthetic

TRAIN_PERSONS = 100_000
TRAIN_SEED = 19
AUTO_PRECISION = 0.99
QUEUE_RECALL = 0.97
M_FLOOR = 1e-9


def frame(records: Iterable[synthetic.Record]) -> pd.DataFrame:
    """The records as Splink's input: the features the service computes, plus the truth (`cluster`)."""
    rows = []
    for r in records:
        f = matching.features(r.name, r.sex, r.birth_date, r.residence, r.phone, r.mother_id, r.document)
        rows.append((r.unique_id, r.cluster, f.name, f.name_py, f.surname_py, f.given_py, f.birth_date,
                     f.birth_year, f.sex, f.phone, f.residence, f.mother_id, f.document))
    return pd.DataFrame(rows, columns=["unique_id", "cluster", "name", "name_py", "surname_py", "given_py",
                                       "birth_date", "birth_year", "sex", "phone", "residence", "mother_id",
                                       "document"])


def _level(lv: matching.Level) -> Any:
    level = cll.CustomLevel(lv.sql, label_for_charts=lv.label).configure(is_null_level=lv.is_null)
    if lv.u_fixed is not None:
        level = level.configure(u_probability=lv.u_fixed, fix_u_probability=True)
    return level


def settings() -> SettingsCreator:
    """The Splink settings written from registry.domain.matching's levels (one description for both)."""
    comparisons: list[Any] = [
        cl.CustomComparison(output_column_name=col, comparison_levels=[_level(lv) for lv in levels],
                            comparison_description=col)
        for col, levels in matching.COMPARISONS.items()]
    return SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                           blocking_rules_to_generate_predictions=[block(r) for r in matching.BLOCKING_RULES],
                           additional_columns_to_retain=["cluster"], retain_intermediate_calculation_columns=False,
                           retain_matching_columns=False)


def block(rule: str) -> Any:
    """A blocking rule of registry.domain.matching as Splink's own (the SQL as written)."""
    from splink.blocking_rule_library import CustomRule

    return CustomRule(rule)


def linker(df: pd.DataFrame, model: dict[str, Any] | None = None) -> Linker:
    return Linker(df, model["splink_settings"] if model else settings(), db_api=DuckDBAPI())


def estimate(lk: Linker) -> None:
    lk.training.estimate_probability_two_random_records_match(
        ['l."document" = r."document"', 'l."name" = r."name" AND l."birth_date" = r."birth_date"'], recall=0.7)
    lk.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=TRAIN_SEED)
    # pairs sharing a document are nearly all one person: m of every other field; then the document's own
    lk.training.estimate_parameters_using_expectation_maximisation('l."document" = r."document"')
    lk.training.estimate_parameters_using_expectation_maximisation(
        'l."birth_date" = r."birth_date" AND l."surname_py" = r."surname_py"')


def predict(lk: Linker, threshold: float = -5.0) -> pd.DataFrame:
    """Every blocked pair above `threshold`: unique ids, match weight and the truth (same cluster)."""
    out = lk.inference.predict(threshold_match_weight=threshold).as_pandas_dataframe()
    out["truth"] = out["cluster_l"] == out["cluster_r"]
    return out[["unique_id_l", "unique_id_r", "match_weight", "truth"]]


def thresholds(pred: pd.DataFrame, true_pairs: int) -> tuple[float, float]:
    """(upper, lower) match weights chosen on planted truth (see the module docstring). Upper: where the pairs
    stop being almost all true — the precision of the 100 pairs around a weight falls below 95 % — held so
    that everything above it stays ≥ AUTO_PRECISION. Lower: where QUEUE_RECALL of the planted duplicates are
    found, or, if blocking cannot reach that, where the last true pair is found above a 5 % local precision."""
    p = pred.sort_values("match_weight", ascending=False).reset_index(drop=True)
    tp = p["truth"].cumsum()
    cumulative = tp / (p.index + 1)
    local = p["truth"].rolling(100, min_periods=1, center=True).mean()
    clean = p[(local >= 0.95) & (cumulative >= AUTO_PRECISION)]
    upper_i = int(clean.index[-1]) if len(clean) and clean.index[0] == 0 else 0
    # the clean run from the top: stop at the first break
    breaks = p.index[(local < 0.95) | (cumulative < AUTO_PRECISION)]
    if len(breaks):
        upper_i = max(0, int(breaks[0]) - 1)
    upper = float(p["match_weight"].iloc[upper_i])
    enough = p[tp >= QUEUE_RECALL * true_pairs]
    if len(enough):
        lower = float(enough["match_weight"].iloc[0])
    else:
        useful = p[(local >= 0.05) & p["truth"]]
        lower = float(useful["match_weight"].iloc[-1]) if len(useful) else upper
    return upper, min(upper, lower)


def measure(pred: pd.DataFrame, true_pairs: int, upper: float, lower: float) -> dict[str, Any]:
    """Precision and recall of the automatic links, of the review queue, and of both together."""
    auto = pred[pred["match_weight"] >= upper]
    queue = pred[(pred["match_weight"] >= lower) & (pred["match_weight"] < upper)]
    both = pred[pred["match_weight"] >= lower]

    def pr(x: pd.DataFrame) -> dict[str, Any]:
        tp = int(x["truth"].sum())
        return {"pairs": len(x), "true": tp, "precision": round(tp / len(x), 4) if len(x) else None,
                "recall": round(tp / true_pairs, 4) if true_pairs else None}

    return {"true_pairs": true_pairs, "auto": pr(auto), "queue": pr(queue), "auto_and_queue": pr(both)}


def train(n: int = TRAIN_PERSONS, seed: int = TRAIN_SEED) -> dict[str, Any]:
    records = list(synthetic.population(n, seed))
    df = frame(records)
    lk = linker(df)
    estimate(lk)
    model = _unobserved_as_floor(json.loads(json.dumps(lk.misc.save_model_to_json())))
    pred = predict(linker(df, {"splink_settings": model}))
    true_pairs = sum(1 for r in records if r.is_duplicate)
    upper, lower = thresholds(pred, true_pairs)
    return {
        "format": "mch-person-matching/1",
        "version": datetime.now(UTC).strftime("%Y-%m-%d.%H%M"),
        "trained_on": {"persons": n, "records": len(records), "seed": seed, "generator": "registry.linkage.synthetic",
                       "splink": _splink_version()},
        "thresholds": {"upper_match_weight": round(upper, 3), "lower_match_weight": round(lower, 3),
                       "chosen_for": {"auto_precision": AUTO_PRECISION, "queue_recall": QUEUE_RECALL},
                       "on_training_population": measure(pred, true_pairs, upper, lower)},
        "splink_settings": model,
    }


def _unobserved_as_floor(model: dict[str, Any]) -> dict[str, Any]:
    """A level EM never saw among matches (e.g. a birth date three edits away: no duplicate of the population has
    one) gets m = M_FLOOR, written into the model, so Splink's predictions and the service weigh it alike."""
    for c in model["comparisons"]:
        for lv in c["comparison_levels"]:
            if not lv.get("is_null_level") and lv.get("m_probability") is None:
                lv["m_probability"] = M_FLOOR
    return model


def batch_match(records: list[synthetic.Record], model: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, float]]:
    """The stored model over a whole population (no training): the scored pairs and the seconds each step took."""
    t0 = time.perf_counter()
    df = frame(records)
    t1 = time.perf_counter()
    lk = linker(df, model)
    pred = predict(lk, model["thresholds"]["lower_match_weight"])
    t2 = time.perf_counter()
    return pred, {"features_s": round(t1 - t0, 1), "blocking_and_scoring_s": round(t2 - t1, 1)}


def _splink_version() -> str:
    from importlib.metadata import version

    return version("splink")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=TRAIN_PERSONS)
    ap.add_argument("--seed", type=int, default=TRAIN_SEED)
    a = ap.parse_args()
    doc = train(a.persons, a.seed)
    matching.model_from_json(doc)  # the service can read it
    matching.MODEL_FILE.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(doc["thresholds"], indent=1))


if __name__ == "__main__":
    main()
