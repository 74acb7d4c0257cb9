"""``rasa-gpt bench recommend``: the recommender on labelled requests and on the
held-out last purchases of a shop's customers, beside the bot's former rules
and popularity, in the same run.

    (cd bot && python -m shop.db)        # the reference shop's catalogue and customers
    rasa-gpt bench recommend --database-url sqlite:///bot/shop.db \\
        --requests bot/benchmark/recommend_requests.yml --out DIR [--split test] [--scale 20000]

Requests file: ``{"requests": [{id, split: dev|test, language, text, customer
(optional), max_price / min_price (the stated budget, for violations),
acceptable: [item ids], clarify: true (a request too vague to rank)}]}``.

Next purchases: every customer's last order (by ``bought_at``) is held out;
the recommender, its co-purchase and popularity see only the purchases before;
customers with an even number are the development half, odd the test half.
``--scale N`` measures latency once more on a catalogue of N items made by
copying the shop's (new ids, prices moved by up to 20 %; a copy's vector is
its source's, so only the source items are encoded).
"""

import argparse
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from rasa_gpt_components.bench import report
from rasa_gpt_components.recommend.catalogue import Catalogue, Item, Purchase, load_catalogue
from rasa_gpt_components.recommend.recommender import Recommender
from rasa_gpt_components.recommend.request import parse_request
from rasa_gpt_components.recommend.settings import RecommenderSettings
from rasa_gpt_components.yaml_files import read_yaml_file

K_REQUEST, K_NDCG, K_NEXT = 3, 5, 5
MEASURES = {
    "hit@3": "requests whose first 3 items hold at least one acceptable item (requests not labelled vague)",
    "ndcg@5": "normalised discounted cumulative gain of the first 5 items, an acceptable item counting 1",
    "violations": "items over the stated budget (max_price), under min_price, out of stock, or a durable item the "
                  "customer owns",
    "clarified": "vague requests answered with a question (system only; the baselines always list items)",
    "next hit@5": "customers one of whose held-out last-order items is among the 5 recommended from their history",
}

Ranker = Callable[[Optional[str], Sequence[Purchase], str, int], List[Item]]


def load_requests(path: Path) -> List[Dict[str, Any]]:
    data = read_yaml_file(path) or {}
    requests = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(requests, list) or not requests:
        raise SystemExit(f"{path}: expected a mapping with a non-empty 'requests' list.")
    for r in requests:
        missing = {"id", "text", "language"} - set(r)
        if missing or not (r.get("acceptable") or r.get("clarify")):
            raise SystemExit(f"{path}: request {r.get('id')} lacks {sorted(missing) or 'acceptable or clarify'}.")
    return requests


# --- the baselines ------------------------------------------------------------------


def popularity_ranker(catalogue: Catalogue) -> Ranker:
    """The most bought items, without the durable ones the customer owns."""
    buyers = Counter(item for item in {(p.customer, p.item) for p in catalogue.purchases})
    order = sorted(catalogue.items, key=lambda i: (-buyers[i.id], i.id))

    def rank(_text: Optional[str], history: Sequence[Purchase], _language: str, k: int) -> List[Item]:
        owned = {p.item for p in history}
        return [i for i in order if not (i.durable and i.id in owned)][:k]

    return rank


def rules_ranker(catalogue: Catalogue, recommender: Recommender) -> Ranker:
    """The reference bot's former rules: a category the request names 3, a
    category of the customer's past orders 1, ties to the better sellers; never
    an item bought before; no budget, stock or request text."""
    sold = Counter(p.item for p in catalogue.purchases)

    def rank(text: Optional[str], history: Sequence[Purchase], language: str, k: int) -> List[Item]:
        stated = parse_request(text, recommender.lexicon, language).wants.get("category", frozenset()) if text else set()
        owned = {p.item for p in history}
        past = {catalogue.item(i).category for i in owned if catalogue.item(i)}
        def score(item: Item) -> int:
            return 3 * (item.category in stated) + (item.category in past)
        candidates = [i for i in catalogue.items if i.id not in owned]
        interesting = [i for i in candidates if score(i) > 0] or candidates
        return sorted(interesting, key=lambda i: (-score(i), -sold[i.id], i.id))[:k]

    return rank


def system_ranker(recommender: Recommender) -> Ranker:
    def rank(text: Optional[str], history: Sequence[Purchase], language: str, k: int) -> List[Item]:
        return list(recommender.recommend(text, language=language, may_ask=False, history=history).items)[:k]

    return rank


# --- measures -----------------------------------------------------------------------


def ndcg(ranked: Sequence[str], acceptable: Set[str], k: int) -> float:
    gain = sum(1 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in acceptable)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(acceptable))))
    return gain / ideal if ideal else 0.0


def violations(items: Sequence[Item], request: Dict[str, Any], owned: Set[str]) -> List[str]:
    found = []
    for item in items:
        if request.get("max_price") is not None and item.price > float(request["max_price"]):
            found.append(f"{item.id} over budget ({item.price:g} > {request['max_price']})")
        if request.get("min_price") is not None and item.price < float(request["min_price"]):
            found.append(f"{item.id} under min_price ({item.price:g} < {request['min_price']})")
        if item.stock <= 0:
            found.append(f"{item.id} out of stock")
        if item.durable and item.id in owned:
            found.append(f"{item.id} already owned")
    return found


def history_of(catalogue: Catalogue, customer: Optional[Any]) -> List[Purchase]:
    return [p for p in catalogue.purchases if customer is not None and p.customer == str(customer)]


def score_requests(requests: Sequence[Dict[str, Any]], rankers: Dict[str, Ranker], recommender: Recommender,
                   catalogue: Catalogue) -> Dict[str, Any]:
    out: Dict[str, Any] = {name: {"hit@3": [], "ndcg@5": [], "violations": [], "misses": []} for name in rankers}
    clarified, vague, latencies = [], 0, []
    for r in requests:
        history = history_of(catalogue, r.get("customer"))
        owned = {p.item for p in history}
        if r.get("clarify"):
            vague += 1
            result = recommender.recommend(r["text"], language=r["language"], history=history)
            clarified.append(r["id"]) if result.basis == "clarify" else None
            continue
        acceptable = {str(a) for a in r["acceptable"]}
        for name, rank in rankers.items():
            started = time.perf_counter()
            items = rank(r["text"], history, r["language"], K_NDCG)
            if name == "system":
                latencies.append((time.perf_counter() - started) * 1000)
            ids = [i.id for i in items]
            hit = bool(set(ids[:K_REQUEST]) & acceptable)
            block = out[name]
            block["hit@3"].append(hit)
            block["ndcg@5"].append(ndcg(ids, acceptable, K_NDCG))
            found = violations(items[:K_REQUEST], r, owned)
            block["violations"].extend(f"{r['id']}: {v}" for v in found)
            if not hit:
                block["misses"].append({"id": r["id"], "text": r["text"], "got": ids[:K_REQUEST]})
    summary = {name: {"requests": len(b["hit@3"]), "hit@3": _mean(b["hit@3"]), "ndcg@5": _mean(b["ndcg@5"]),
                      "violations": len(b["violations"]), "violation_list": b["violations"], "misses": b["misses"]}
               for name, b in out.items()}
    summary["clarify"] = {"vague": vague, "clarified": len(clarified)}
    summary["latency_ms"] = _latency(latencies)
    return summary


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _latency(values: Sequence[float]) -> Dict[str, float]:
    return {"p50": report.percentile(values, 50), "p95": report.percentile(values, 95),
            "max": round(max(values), 1) if values else 0.0, "n": len(values)}


# --- next purchases -----------------------------------------------------------------


def split_last_orders(catalogue: Catalogue) -> Tuple[Catalogue, Dict[str, Set[str]]]:
    """The catalogue without every customer's last order, and those orders' items per customer."""
    orders: Dict[str, Dict[str, str]] = defaultdict(dict)
    for p in catalogue.purchases:
        orders[p.customer][p.order] = max(orders[p.customer].get(p.order, ""), p.bought_at)
    last = {c: max(o, key=lambda order: (o[order], order)) for c, o in orders.items() if len(o) >= 2}
    held: Dict[str, Set[str]] = defaultdict(set)
    kept = []
    for p in catalogue.purchases:
        if last.get(p.customer) == p.order:
            held[p.customer].add(p.item)
        else:
            kept.append(p)
    return Catalogue(catalogue.items, tuple(kept)), dict(held)


def score_next_purchases(train: Catalogue, held: Dict[str, Set[str]], rankers: Dict[str, Ranker],
                         customers: Sequence[str]) -> Dict[str, Any]:
    by_customer: Dict[str, List[Purchase]] = defaultdict(list)
    for p in train.purchases:
        by_customer[p.customer].append(p)
    out = {}
    for name, rank in rankers.items():
        hits = [bool({i.id for i in rank(None, by_customer[c], "en", K_NEXT)} & held[c]) for c in customers]
        out[name] = {"customers": len(hits), "hit@5": _mean(hits)}
    return out


def customer_half(customers: Sequence[str], split: str) -> List[str]:
    return [c for c in sorted(customers) if (int(c) % 2 == 0) == (split == "dev")] if all(
        c.isdigit() for c in customers) else sorted(customers)


# --- scale --------------------------------------------------------------------------


def scaled(catalogue: Catalogue, size: int, seed: int = 13) -> Catalogue:
    """``size`` items copied from ``catalogue`` (new ids, prices moved by up to 20 %), and its purchases."""
    rng = random.Random(seed)
    items = list(catalogue.items)
    while len(items) < size:
        source = catalogue.items[len(items) % len(catalogue.items)]
        items.append(replace(source, id=f"{source.id}-x{len(items)}", price=round(source.price * rng.uniform(0.8, 1.2))))
    return Catalogue(tuple(items), catalogue.purchases)


class EachTextOnce:
    """The encoder, computing each distinct text once: the copies of a scaled
    catalogue share their source's text, so only the source items are encoded
    (encoding itself is measured by the first start of the real catalogue)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.fingerprint = encoder.fingerprint

    def encode(self, texts: Sequence[str], **options: Any) -> Any:
        distinct = list(dict.fromkeys(texts))
        vectors = self.encoder.encode(distinct, **options)
        row = {text: i for i, text in enumerate(distinct)}
        return vectors[[row[text] for text in texts]]


def latency_at_scale(settings: RecommenderSettings, catalogue: Catalogue, requests: Sequence[Dict[str, Any]],
                     encoder: Any, size: int) -> Dict[str, Any]:
    started = time.perf_counter()
    recommender = Recommender(settings, catalogue=scaled(catalogue, size), encoder=EachTextOnce(encoder))
    built = time.perf_counter() - started
    times = []
    for r in requests:
        history = history_of(catalogue, r.get("customer"))
        t0 = time.perf_counter()
        recommender.recommend(r["text"], language=r["language"], may_ask=False, history=history)
        times.append((time.perf_counter() - t0) * 1000)
    return {"items": size, "build_seconds": round(built, 1), **_latency(times)}


# --- the run ------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> Dict[str, Any]:
    config = read_yaml_file(args.config) if args.config else {}
    config = {**(config or {}), "database_url": args.database_url}
    settings = RecommenderSettings.from_config(config)
    catalogue = load_catalogue(settings.database_url, settings.items_sql, settings.purchases_sql)
    recommender = Recommender(settings, catalogue=catalogue)
    requests = [r for r in load_requests(Path(args.requests)) if args.split == "all" or r.get("split") == args.split]
    rankers = {"system": system_ranker(recommender), "rules (former bot)": rules_ranker(catalogue, recommender),
               "popularity": popularity_ranker(catalogue)}
    data: Dict[str, Any] = {"split": args.split, "items": len(catalogue.items),
                            "customers": len({p.customer for p in catalogue.purchases}),
                            "purchases": len(catalogue.purchases), "settings": _settings_view(settings)}
    for language in ("zh", "en", "all"):
        chosen = [r for r in requests if language == "all" or r["language"] == language]
        data[language] = score_requests(chosen, rankers, recommender, catalogue)
    train, held = split_last_orders(catalogue)
    customers = customer_half(list(held), args.split) if args.split != "all" else sorted(held)
    trained = Recommender(settings, catalogue=train, encoder=recommender.encoder)
    data["next_purchase"] = score_next_purchases(
        train, held, {"system": system_ranker(trained), "rules (former bot)": rules_ranker(train, trained),
                      "popularity": popularity_ranker(train)}, customers)
    if args.scale:
        data["scale"] = latency_at_scale(settings, catalogue, requests, recommender.encoder, args.scale)
    return data


def _settings_view(settings: RecommenderSettings) -> Dict[str, Any]:
    from dataclasses import asdict

    view = asdict(settings)
    view.pop("database_url", None)
    return view


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    lines = ["# Recommendation benchmark", "", f"`{data['command']}`, {data['date']}", "",
             f"Machine: {data['machine']}", "",
             f"Catalogue: {data['items']} items, {data['customers']} customers, {data['purchases']} purchases; "
             f"requests of split `{data['split']}`.", ""]
    rows = []
    for language in ("zh", "en", "all"):
        for name in ("system", "rules (former bot)", "popularity"):
            b = data[language][name]
            rows.append([language, name, b["requests"], report.fmt(b["hit@3"]), report.fmt(b["ndcg@5"]),
                         b["violations"]])
    lines.append(report.markdown_table(["language", "ranker", "requests", "hit@3", "NDCG@5", "violations"], rows))
    clarify = data["all"]["clarify"]
    latency = data["all"]["latency_ms"]
    lines += ["", f"Vague requests answered with a question: {clarify['clarified']}/{clarify['vague']}.",
              f"System latency per request (ms, {latency['n']} requests): p50 {latency['p50']}, p95 {latency['p95']}, "
              f"max {latency['max']}.", "", "## Next purchases (held-out last orders)", ""]
    nxt = data["next_purchase"]
    lines.append(report.markdown_table(["ranker", "customers", "hit@5"],
                                       [[n, b["customers"], report.fmt(b["hit@5"])] for n, b in nxt.items()]))
    if "scale" in data:
        s = data["scale"]
        lines += ["", f"At {s['items']} items (copies of the catalogue; loaded in {s['build_seconds']} s, "
                      "the copies' vectors their sources'): "
                      f"p50 {s['p50']} ms, p95 {s['p95']} ms, max {s['max']} ms over {s['n']} requests."]
    lines += ["", "## Measures", ""] + [f"- **{k}**: {v}" for k, v in MEASURES.items()]
    lines += ["", "## System misses and violations", ""]
    for miss in data["all"]["system"]["misses"]:
        lines.append(f"- {miss['id']} «{miss['text']}» got {', '.join(miss['got']) or 'nothing'}")
    lines += [f"- violation: {v}" for v in data["all"]["system"]["violation_list"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    data = bench(args)
    report.publish(out, args, data, write_markdown)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench recommend``."""
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the shop (e.g. sqlite:///bot/shop.db)")
    parser.add_argument("--config", help="the recommender's options (YAML), e.g. bot/recommend.yml")
    parser.add_argument("--requests", default="bot/benchmark/recommend_requests.yml")
    parser.add_argument("--split", default="test", choices=("dev", "test", "all"))
    parser.add_argument("--scale", type=int, default=0, help="also measure latency at N items (0: not)")
    parser.add_argument("--out", required=True, help="report folder")
