"""GenerativeNLG: Rasa's natural-language generator, plus generated answers.

``endpoints.yml``::

    nlg:
      type: rasa_gpt_components.GenerativeNLG
      knowledge: knowledge        # folder (or file) of the knowledge base
      time_budget: 4.5            # seconds per generated turn

Ordinary responses are rendered exactly as Rasa's template generator renders
them. The fallback response (``fallback_response``) and any response with
``metadata: {generative: true}`` are answered from the knowledge base by the
answer pipeline, in a worker thread (never on Rasa's event loop), at most
``max_concurrency`` at a time, within ``time_budget`` seconds; after that the
response's own template text is sent. A response with ``metadata: {rephrase:
true}`` is reworded by the model (in ``generation_languages``) and sent as it
is when the rewording fails a guardrail or the budget. Every such reply carries
``metadata.generative``: whether it was generated, the passages it used, the
reason and the time it took; the same facts (never the texts) are logged as one
``key=value`` line and counted in rasa_gpt_components.metrics
(docs/observability.md).

Rendering a hand-off response (``handoff.responses``, default ``utter_handoff``)
hands the conversation off (``handoff/desk.py``): a summary for the agent is
built from the tracker, stored with the message (``metadata.handoff``) and sent
to the agents' desk when ``handoff.webhook.url`` is set (docs/handoff.md).
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from rasa_gpt_components.generation.answer import Answer, KnowledgeAnswerer, Outcome, Why, template_answer
from rasa_gpt_components.generation.backends import BackendError, build_backend
from rasa_gpt_components.generation.settings import NLGSettings
from rasa_gpt_components.handoff.conversation import offering_responses
from rasa_gpt_components.handoff.desk import HandoffDesk
from rasa_gpt_components.knowledge import KnowledgeBase, KnowledgeBaseError, answerability
from rasa_gpt_components.knowledge.fit import RetrievalFit, knowledge_fingerprint
from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings, gates_on_coverage
from rasa_gpt_components.metrics import (
    ANSWERS,
    GENERATION_SECONDS,
    GUARDRAIL_REFUSALS,
    TIME_BUDGET_EXCEEDED,
    log_fields,
)
from rasa_gpt_components.text import LANGUAGE_SLOT, clean_text, detect_language, reply_language

logger = logging.getLogger(__name__)

MARGIN = 0.15  # seconds kept back from the budget for the last token and the guardrails


class GenerativeNLG(TemplatedNaturalLanguageGenerator):
    """Templates for ordinary responses; grounded generation for generative ones."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, domain: Optional[Domain] = None) -> None:
        self.domain = domain or Domain.empty()
        # Rasa builds the NLG before it loads the model's domain, then sets
        # `responses` on a TemplatedNaturalLanguageGenerator (agent.load_model):
        # being one, the responses of custom actions render too
        super().__init__(self.domain.responses)
        self.settings = NLGSettings.from_endpoint(dict(endpoint_config.kwargs) if endpoint_config else {})
        self.budget = float(self.settings.time_budget)
        self.answerer = self._build_answerer()
        self.desk = HandoffDesk(self.settings.handoff)
        self._executor = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="rasa-gpt-nlg")
        self._slots: Optional[asyncio.Semaphore] = None
        answerability.register(self)  # policies ask it whether the base answers a message

    def _build_answerer(self) -> KnowledgeAnswerer:
        s = self.settings
        try:
            knowledge = KnowledgeBase.load(Path(s.knowledge))
        except KnowledgeBaseError as error:
            raise RasaException(f"GenerativeNLG: {error}") from None
        try:
            backend = build_backend(s.backend, s.model, s.base_url, s.server_model, s.api_key)
        except BackendError as error:
            raise RasaException(f"GenerativeNLG: {error}") from None
        retrieval, fit = self._fitted(s.retrieval, knowledge)
        encoder = reranker = None
        gpt_states = retrieval.dense and not retrieval.encoder  # embeddings from the GPT model
        if retrieval.encoder and (retrieval.dense or gates_on_coverage(retrieval, fit)):
            from rasa_gpt_components.models.sentence import load_sentence_encoder

            encoder = load_sentence_encoder(retrieval.encoder)
        if gpt_states or retrieval.rerank:
            from rasa_gpt_components.generation.rerank import LikelihoodReranker
            from rasa_gpt_components.models import load_model
            from rasa_gpt_components.models.encoder import EncoderSettings, GPTEncoder

            # the local model: the classifier's and the generator's instance
            loaded = load_model(s.model)
            if gpt_states:
                encoder = GPTEncoder(loaded, EncoderSettings(layer=min(retrieval.layer, loaded.num_layers)))
            if retrieval.rerank:
                reranker = LikelihoodReranker(loaded)
        try:
            retriever = HybridRetriever(knowledge, retrieval, encoder, fit, self._topic_model(s.retrieval, fit))
        except ValueError as error:  # options that do not go together
            raise RasaException(f"GenerativeNLG: {error}") from None
        logger.info("GenerativeNLG: %d passages from '%s', backend %s.", len(knowledge), s.knowledge, s.backend)
        return KnowledgeAnswerer(retriever, backend, s.answer, reranker)

    @staticmethod
    def _fitted(retrieval: RetrievalSettings, knowledge: KnowledgeBase) -> Tuple[RetrievalSettings, Optional[RetrievalFit]]:
        """The retrieval settings with ``retrieval.fit``'s encoder and weights (its thresholds
        per language apply in the retriever), and the fit; unchanged without one."""
        if not retrieval.fit:
            return retrieval, None
        try:
            fit = RetrievalFit.load(Path(retrieval.fit))
        except ValueError as error:
            raise RasaException(f"GenerativeNLG: {error}") from None
        if fit.knowledge_fingerprint != knowledge_fingerprint(knowledge.passages):
            logger.warning("GenerativeNLG: the knowledge base changed since '%s' was fitted; "
                           "run `rasa-gpt knowledge fit` again.", retrieval.fit)
        fitted = replace(retrieval, encoder=fit.encoder, bm25_weight=fit.bm25_weight)
        if fit.context_weight is not None and fit.context_candidates is not None:  # fitted with --followups
            fitted = replace(fitted, context_weight=fit.context_weight, context_candidates=fit.context_candidates)
        return fitted, fit

    @staticmethod
    def _topic_model(retrieval: RetrievalSettings, fit: Optional[RetrievalFit]) -> Optional[Any]:
        """The fit's topic model (knowledge/topics.py; its file beside the fit's), or None."""
        if fit is None or not fit.topic_model:
            return None
        from rasa_gpt_components.knowledge.topics import TopicModel

        try:
            topics = TopicModel.load(Path(str(retrieval.fit)).parent / fit.topic_model)
            topics.check()
        except ValueError as error:
            raise RasaException(f"GenerativeNLG: {error}") from None
        return topics

    def is_generative(self, utter_action: Text, responses: Dict[Text, List[Dict[Text, Any]]]) -> bool:
        """The fallback response, or a response marked ``metadata: {generative: true}``."""
        if utter_action == self.settings.fallback_response:
            return True
        return any((variation.get("metadata") or {}).get("generative") for variation in responses.get(utter_action, []))

    async def generate(
        self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text, **kwargs: Any
    ) -> Optional[Dict[Text, Any]]:
        """Render ``utter_action``: a template, or a generated answer."""
        if kwargs.get("domain_responses"):
            self.responses = kwargs["domain_responses"]
        responses = self.responses
        template = await super().generate(utter_action, tracker, output_channel, **kwargs)
        if template is not None and self.desk.handles(utter_action):
            record = self.desk.hand_off([event.as_dict() for event in tracker.applied_events()], tracker.sender_id,
                                        offering_responses(responses))
            return {**template, "metadata": {**(template.get("metadata") or {}), "handoff": record}}
        if not self.is_generative(utter_action, responses):
            if template and template.get("text") and (template.get("metadata") or {}).get("rephrase"):
                return await self._rephrased(utter_action, template)
            return template
        answer = await self.answer(*self._question(tracker))
        text = answer.text
        if answer.outcome is Outcome.TEMPLATE:  # the response's own template text, or the built-in one
            text = (template or {}).get("text") or answer.text
        reply = dict(template or {})
        reply["text"] = text
        reply["metadata"] = {**(reply.get("metadata") or {}), "generative": answer.metadata()}
        self._report(utter_action, answer)
        return reply

    def _question(self, tracker: DialogueStateTracker) -> Tuple[str, List[Tuple[str, str]], Optional[str]]:
        """What a generative response answers: the customer's latest message, the
        conversation before it and the conversation's language (the ``language`` slot)."""
        message = tracker.latest_message.text if tracker.latest_message else ""
        return (message or "", conversation_history(tracker, self.settings.answer.history_turns),
                tracker.get_slot(LANGUAGE_SLOT))

    def answerable(self, tracker: DialogueStateTracker) -> bool:
        """Whether a generative response would answer the tracker's latest message
        from the knowledge base (retrieval sure of a passage) rather than decline it;
        asked by policies through ``knowledge/answerability.py``, in milliseconds."""
        message, history, conversation_language = self._question(tracker)
        return self.answerer.answerable(*_prepared(message, conversation_language), history)

    async def answer(self, message: str, history: List[Tuple[str, str]],
                     conversation_language: Optional[str] = None) -> Answer:
        """The answer pipeline in the worker pool, within the time budget; an answer
        that only needs retrieval (a few ms) is made right away, without queueing for
        a generation slot behind answers that generate. ``message`` is the
        customer's: cleaned here, once, and trusted below. A message without words
        is answered in ``conversation_language`` (the ``language`` slot)."""
        text, language = _prepared(message, conversation_language)
        if self.answerer.only_retrieves(language):
            return self.answerer.answer(text, history, time.monotonic() + self.budget, language)
        return await self._in_worker(lambda deadline: self.answerer.answer(text, history, deadline, language), language)

    async def _rephrased(self, utter_action: Text, template: Dict[Text, Any]) -> Dict[Text, Any]:
        """``template`` reworded by the model (``rephrase: true``), or as it is."""
        if detect_language(template["text"]) not in self.answerer.settings.generation_languages:
            return template  # no model call, no wait for a generation slot
        answer = await self._in_worker(lambda deadline: self.answerer.rephrase(template["text"], deadline), "en")
        reply = dict(template)
        if answer.generated:
            reply["text"] = answer.text
        reply["metadata"] = {**(reply.get("metadata") or {}), "generative": answer.metadata()}
        self._report(utter_action, answer)
        return reply

    def _report(self, utter_action: Text, answer: Answer) -> None:
        """Count ``answer`` and log it as one ``key=value`` line (a warning when it
        took longer than the budget); never the message's or the answer's text."""
        backend = self.settings.backend
        ANSWERS.labels(utter_action, answer.outcome.value, answer.why.value).inc()
        GENERATION_SECONDS.labels(backend, str(answer.generated).lower()).observe(answer.ms / 1000)
        if answer.why.is_guardrail:
            GUARDRAIL_REFUSALS.labels(answer.why.value).inc()
        over_budget = answer.ms > 1000 * self.budget
        if over_budget:
            TIME_BUDGET_EXCEEDED.inc()
        logger.log(
            logging.WARNING if over_budget else logging.INFO,
            "GenerativeNLG answer %s",
            log_fields(
                action=utter_action, outcome=answer.outcome.value, reason=answer.why.value,
                generated=answer.generated, language=answer.language,
                ms=round(answer.ms), retrieval_ms="-" if answer.retrieval_ms is None else round(answer.retrieval_ms),
                tokens=answer.tokens, passages=",".join(answer.passages) or "-",
                score=max(answer.scores) if answer.scores else "-", backend=backend,
            ),
        )

    async def _in_worker(self, work: Callable[[float], Answer], language: str) -> Answer:
        """``work(deadline)`` in the worker pool, at most ``max_concurrency`` at a
        time, within the time budget; the template answer when it cannot be."""
        started = time.monotonic()
        deadline = started + self.budget
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_concurrency)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.budget)
        except asyncio.TimeoutError:
            return template_answer(language, Why.BUSY, ms=1000 * (time.monotonic() - started))
        try:
            # the pipeline stops itself by the deadline, less a margin for one more token
            # and the guardrails; the extra second below only guards a stuck thread
            task = loop.run_in_executor(self._executor, work, deadline - MARGIN)
            answer = await asyncio.wait_for(asyncio.shield(task), timeout=max(deadline - time.monotonic(), 0) + 1.0)
        except asyncio.TimeoutError:
            answer = template_answer(language, Why.DEADLINE)
        except Exception as error:  # never a traceback instead of a reply
            logger.exception("GenerativeNLG: the answer pipeline failed (%s).", type(error).__name__)
            answer = template_answer(language, Why.ERROR)
        finally:
            self._slots.release()
        answer.ms = 1000 * (time.monotonic() - started)
        return answer


def _prepared(message: str, conversation_language: Optional[str]) -> Tuple[str, str]:
    """The customer's message cleaned (once: trusted below) and the language to answer it in
    (``conversation_language``, the ``language`` slot, for a message without words)."""
    text = clean_text(message)
    return text, reply_language(text, conversation_language)


def conversation_history(tracker: DialogueStateTracker, turns: int) -> List[Tuple[str, str]]:
    """The last ``turns`` user/bot exchanges before the current message, as
    ``("user"|"bot", text)``, oldest first, cleaned (they go into a prompt)."""
    said: List[Tuple[str, str]] = []
    for event in tracker.applied_events():
        if isinstance(event, UserUttered) and event.text:
            said.append(("user", event.text))
        elif isinstance(event, BotUttered) and event.text:
            said.append(("bot", event.text))
    if said and said[-1][0] == "user":
        said = said[:-1]  # the current message is asked separately
    recent = said[-2 * turns :] if turns > 0 else []
    return [(speaker, clean_text(text)) for speaker, text in recent]
