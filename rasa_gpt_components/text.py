"""Text helpers shared by every component: cleaning untrusted text, language
detection, sentences, and the two ways of cutting Chinese / English text into
words (search words for retrieval and grounding, tokens for n-grams).

Untrusted text (a customer's message, a model's output, a knowledge-base
file) is cleaned once, where it enters: the NLU components, the NLG's entry,
the guardrails' check of an answer, the knowledge-base loader, the channels.
Everything below those points takes the text as clean; the helpers here
(other than :func:`clean_text`) do not clean again."""

import re
import unicodedata
from typing import List, Optional, Sequence, Tuple

MAX_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"\s+")


def clean_text(text: object, max_chars: int = MAX_CHARS) -> str:
    """Normalise a message for a model: NFKC, no control characters, collapsed
    white space, at most ``max_chars`` characters. Never raises."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    text = text[: max_chars * 2]  # bound the work before normalising
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return _SPACES.sub(" ", text).strip()[:max_chars]


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[\w\u3400-\u4dbf\u4e00-\u9fff]", re.UNICODE)
# words too common to tell passages apart
_STOPWORDS = frozenset(
    "a an the is are was were be been am i you he she it we they me my your our their "
    "to of in on at for with and or but do does did can could would should will "
    "this that these those what how when where which who why there here please hi "
    "的 了 吗 呢 吧 啊 是 我 你 他 她 它 我们 你们 在 有 和 与 就 都 也 要 会 能 可以 "
    "怎么 什么 怎样 如何 请问 一下 这个 那个 哪 哪里 么".split()
)


def detect_language(text: str) -> str:
    """``"zh"`` when Chinese characters are at least a fifth of the letters, else ``"en"``."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0:
        return "en"
    # one Chinese character carries about as much as a four-letter word
    return "zh" if cjk * 4 >= 0.2 * (cjk * 4 + latin) else "en"


# codes such as order numbers and phone numbers say nothing about the language
_CODES = re.compile(r"(?<![A-Za-z])[A-Za-z]{0,4}[-# ]?[0-9][0-9A-Za-z-]*")


# clothing sizes: "XL", "xxl", "2XL", "M" say nothing about the language either
_SIZES = re.compile(r"(?<![A-Za-z])(?:[2-5]?X{1,3}[SL]|XS|[SML])(?![A-Za-z])", re.IGNORECASE)


def message_language(text: str) -> Optional[str]:
    """The language of a customer's message, or None when it has no words
    (only an order number, a clothing size, digits or punctuation)."""
    rest = _SIZES.sub(" ", _CODES.sub(" ", text))
    if not _CJK.search(rest) and not re.search(r"[A-Za-z]{2,}", rest):
        return None
    return detect_language(rest)


# personal data a customer may type: a mobile number (mainland China, or with a country
# code) and an e-mail address; order numbers ("ES" + 10 digits) are not touched
_MOBILE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)|(?<![\w])\+\d{1,3}(?:[\s-]?\d){6,12}(?!\d)")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_personal_data(text: str) -> str:
    """``text`` with phone numbers and e-mail addresses masked (the first 3 and last 2
    digits, the first letter and the domain kept): what leaves the bot for other
    systems, such as a hand-off summary sent to a chat group."""
    def phone(match: "re.Match[str]") -> str:
        digits = re.sub(r"\D", "", match.group())
        return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]

    return _EMAIL.sub(r"\1***@\2", _MOBILE.sub(phone, text))


LANGUAGE_SLOT = "language"  # the conversation's language: LanguageDetector's default slot


def reply_language(text: str, conversation_language: Optional[str] = None) -> str:
    """The language to answer ``text`` in: its own, or, when it has no words (an order
    number, an emoji, "？？？"), the conversation's ("zh" or "en"; else as detected)."""
    own = message_language(text)
    if own is None and conversation_language in ("zh", "en"):
        return str(conversation_language)
    return own or detect_language(text)


# a sentence ends at 。！？!?；; or a newline, or at a full stop followed by white
# space or the end (so "www.example.com" and "3.5" stay whole)
_SENTENCE = re.compile(r".+?(?:[。！？!?；;\n]+|\.+(?=\s|$)|$)\s*", re.S)
_SENTENCE_END = re.compile(r"[。！？!?；;]|\.(?=\s|$)")
# a Chinese character, or a run of Latin letters, digits and apostrophes
TOKEN = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9']+")


# English words that only lead in to what follows ("ok and how long…", "hmm, do you…")
_LEAD_IN_WORDS_EN = r"ok|okay|and|so|but|also|oh|well|hmm+|um+|uh+|btw|hey|hi|wait|sorry"

_QUESTION = re.compile(
    r"[?？]|[吗呢么嘛][\s。！!~～]*$|什么|怎么|怎样|多少|多久|多长时间|几[天个点号时]|哪|谁|啥|咋|为何|如何|何时|"
    r"是否|能不能|可不可以|会不会|有没有|是不是|"
    # an English question word first, after words that only lead in ("ok and how long does it take")
    r"^\s*(?:(?:" + _LEAD_IN_WORDS_EN + r"|then|right)[\s,]+)*"
    r"(?:what|how|when|where|why|which|who|whose|do|does|did|can|could|is|are|was|were|will|would|should|"
    r"may|have|has)\b|"
    # or a wh-word after a comma or a sentence ("I paid by card, how long does that take")
    r"[,，.;!]\s*(?:what|how|when|where|why|which|who)\b",
    re.IGNORECASE)


# the words of a message that only says yes or no (and please / thanks, or never mind): "ok", "yes
# please", "不用了", "确认", "好的谢谢", "actually never mind", "那算了"; what a knowledge base has no answer for
_YES_NO_WORDS = ("yes", "yeah", "yep", "yup", "ok", "okay", "kk", "k", "sure", "fine", "alright", "right",
                 "correct", "confirm", "confirmed", "got it", "cool", "great", "perfect", "no", "nope", "nah",
                 "not needed", "no need", "please", "pls", "thanks", "thank you", "thx", "cheers", "ta", "lovely",
                 "never mind", "nevermind", "forget it", "forget about it", "actually", "oh",
                 "算了", "算啦", "那算了", "不弄了", "没事了",
                 "好的", "好吧", "好滴", "好嘞", "好哒", "好", "明白了", "明白", "没问题",
                 "行吧", "行", "可以", "嗯嗯", "嗯", "恩", "是的", "是", "对的", "对",
                 "没错", "确认", "确定", "不用了", "不用", "不需要了", "不需要", "不要了", "不要", "不了", "没有", "没事", "不", "否",
                 "谢谢", "麻烦了", "麻烦你了", "麻烦您了", "哦", "噢", "👍", "👌", "🙏")
_YES_NO_WORD = "|".join(re.escape(w) for w in sorted(_YES_NO_WORDS, key=len, reverse=True))
_ONLY_YES_OR_NO = re.compile(rf"[\W_]*(?:(?:{_YES_NO_WORD})(?![a-z])[\W_]*)+", re.IGNORECASE)


def only_yes_or_no(text: str) -> bool:
    """Whether a message only says yes or no ("ok", "yes please", "不用了", "确认"), with
    nothing that could be looked up ("就是那个嘛，你懂的" and "so about that" say more)."""
    return bool(text) and bool(_ONLY_YES_OR_NO.fullmatch(text.strip()))


# the answer to "shall I get you a person?" that says yes and asks for it and nothing else: "好的，麻烦了",
# "要，帮我转", "好 麻烦你了", "ok please, transfer me" ("好的谢谢" and "ok thanks" may as well close the
# conversation; "不用了，麻烦了" says no; "好的，那运费谁出？" asks something else)
_YES_WORDS = re.compile(r"好|行|可以|嗯|恩|是|对|要|\b(?:yes|yeah|yep|yup|ok|okay|sure|fine|alright)\b", re.IGNORECASE)
_ASKING_WORDS = re.compile(r"麻烦(?:你|您)?了?|请|尽快|快点|帮我转(?:一下|接)?|转(?:一下|接|过去)?|人工|"
                           r"\b(?:please|pls|go ahead|do it|transfer me|connect me|put me through)\b", re.IGNORECASE)
_FILLERS = re.compile(r"[吧呀啊的了哈嘛]|\b(?:then|now)\b", re.IGNORECASE)
_NO_WORDS = re.compile(r"不|没|否|别|\b(?:no|nope|nah|not)\b", re.IGNORECASE)


def accepts_offer(text: str) -> bool:
    """Whether a message asks for it, with or without a yes, and says nothing else ("好的，麻烦了",
    "要，帮我转", "转吧", "ok please", "go ahead"): the answer to an offer of a person, whatever
    else the words could be read as (the NLU read "好 麻烦了" as thanks, "要，帮我转" and "转吧"
    as nothing sure)."""
    text = text or ""
    if looks_like_question(text) or _NO_WORDS.search(text) or not _ASKING_WORDS.search(text):
        return False
    rest = _FILLERS.sub(" ", _ASKING_WORDS.sub(" ", _YES_WORDS.sub(" ", text)))
    return not _PUNCTUATION.sub("", rest)


# a message that says something is not needed, wherever it says it: "it's fine, no need to
# escalate, just letting you know", "没事，没必要转，我就说一声" (no plain no first)
_NO_NEED = re.compile(r"不用|不需要|没必要|用不着|\bno need\b|\bnot (?:needed|necessary)\b|\b(?:don'?t|do not) need\b",
                      re.IGNORECASE)


def says_no_need(text: str) -> bool:
    """Whether a message, no question, says that something is not needed ("it's fine, no need
    to escalate", "没事，没必要转"): to an offer of a person, a no."""
    return bool(text) and not looks_like_question(text) and bool(_NO_NEED.search(text))


# words with which a customer takes back what they were doing: "算了，还是换货吧",
# "can I swap them instead?", "on second thought, just refund it" ("还是有杂音", "it's
# actually smaller than the photo" and "rather small" are reasons, not a change of mind)
_CHANGES_MIND = re.compile(r"算了|还是(?:帮我|给我|直接)?(?:换|退|改|要|申请)|改主意|不退了|不换了|不改了|\binstead\b|"
                           r"\b(?:i'?d|i would) rather\b|\brather (?:exchange|swap|return|refund|change)|"
                           r"on second thought|changed? my mind", re.IGNORECASE)


def changes_mind(text: str) -> bool:
    """Whether a message takes back what the customer was doing ("算了，还是换货吧",
    "actually, can I swap them instead?")."""
    return bool(_CHANGES_MIND.search(text or ""))


# words that call off a request by naming it: "drop the exchange", "forget about the refund",
# "no longer need the swap", "取消换货吧", "退款不要了", "这个换货申请撤回吧"; not "don't cancel the
# exchange", "别取消换货", a request's own words ("cancel the order, refund me", "算了，换货吧") or what
# the request is for ("颜色不换了，换大一码": the colour, not the exchange)
_REQUESTS_EN = r"exchange|swap|refund|return|request|application|claim|address change"
_CALL_OFF_EN = re.compile(r"\b(?:drop|cancel|call off|scrap|scratch|forget(?: about)?|ditch|abandon|withdraw|undo|"
                          r"never ?mind|no longer (?:need|want)|(?:don'?t|do not) (?:need|want))\s+"
                          r"(?:the|this|that|my|our|your)\s+(?:whole\s+)?(?:[a-z-]+\s+)?"
                          rf"(?:{_REQUESTS_EN})\b(?!\s+to\b)",
                          re.IGNORECASE)
_REQUESTS_ZH = r"换货|退款|退货|申请|改地址|地址修改|修改地址"
_CALL_OFF_ZH = re.compile(rf"(?:取消|撤回|撤销|撤掉|不要|不用|不想|不需要|不办)(?:这个|这次|这笔|那个|我的|的)?(?:{_REQUESTS_ZH})|"
                          rf"(?:{_REQUESTS_ZH})(?:申请|的事)?(?:就|先|还是|也)?"
                          r"(?:取消|撤回|撤销|撤掉|不要了|不用了|不需要了|不办了|不弄了|就?算了|作罢|免了)")
_NOT_BEFORE = re.compile(r"(?:\b(?:don'?t|do not|not|never)|别|不要|不用|不)\s*$", re.IGNORECASE)


def calls_off(text: str) -> bool:
    """Whether a message, no question, calls off a request by naming it ("drop the exchange",
    "退款不要了"): a customer leaving a form in words a classifier reads as its request."""
    if not text or looks_like_question(text):
        return False
    return any(not _NOT_BEFORE.search(text[:found.start()])
               for pattern in (_CALL_OFF_EN, _CALL_OFF_ZH) for found in pattern.finditer(text))


# a question that names only something else and means the question before it: "那西安呢" after
# "寄到哈尔滨要几天？", "and to Macau?", "what about Hong Kong, same price?". Not a message about the
# customer's own things ("那我的订单呢"), a request ("那退货呢", "what about a refund?"), one with an order
# number, one that points back ("那这个呢", "and that one?") or asks something of its own ("那怎么办呢",
# "and how long does that take?")
_ELLIPSIS_ZH = re.compile(r"(?:那|那么)?(?:要是|如果)?(?:寄到|发到|送到|寄|发|到)?(?P<what>[^\s，,。？?！!～~]{1,8}?)"
                          r"(?:的话)?呢[？?。！!～~\s]*")
_ELLIPSIS_EN = re.compile(r"(?:(?:and|but|ok|okay|so|oh)[\s,]+)?(?:(?:what|how) about|and)\s+(?:to\s+|for\s+|in\s+)?"
                          r"(?P<what>[a-z][a-z' -]{0,30}?)(?:[\s,]+(?:same (?:deal|price|thing)|too|then))?[\s?!.]*",
                          re.IGNORECASE)
_ELLIPSIS_NOT = re.compile(r"^个$|[0-9]|我|你|咱|俺|他|她|这|它|订单|单号|怎么|什么|为什么|多少|几|谁|哪|吗|啥|咋|"
                           r"退|换|改|人工|客服|"
                           r"\b(?:i|me|my|mine|you|your|we|our|us|order|orders|refunds?|returns?|exchanges?|human|agent|"
                           r"person|how|what|when|why|who|where|"
                           r"which|long|much|many|does|do|is|are|can|could|will|would|that|this|it|them|these|"
                           r"those|one)\b",
                           re.IGNORECASE)


def elliptical_question(text: str) -> bool:
    """Whether a message names only something else and means the question asked just before
    it ("那西安呢", "and to Macau?", "what about Hong Kong, same price?"): nothing of the
    customer's own ("那我的订单呢"), no order number, nothing pointed back at, no question of its own."""
    stripped = (text or "").strip()
    for pattern in (_ELLIPSIS_ZH, _ELLIPSIS_EN):
        found = pattern.fullmatch(stripped)
        if found and not _ELLIPSIS_NOT.search(found.group("what")):
            return True
    return False


# a message that starts with a plain yes, or a plain no, and says more after it: "对 就是白色",
# "yes, white is right", "不是，我要白色的"; the rest must not turn it round ("ok wait, no", "好的，
# 我再想想", "yes I don't want it"). "嗯" and "ok" are as often fillers as a yes: only where what follows restates what is held
_YES_FIRST = ("please do", "sure thing", "go ahead", "that's correct", "that is correct", "that's right",
              "that is right", "exactly", "absolutely", "yes", "yeah", "yep", "yup", "sure", "correct",
              "confirmed", "confirm", "是的", "对的", "没错", "确认", "确定", "好的", "好嘞", "好哒", "可以", "对", "是", "行")
# words of agreement that are a yes only before a pause: "agreed, a white mat in place of the red one",
# "good, that's the band I meant"; not "good morning", "right away", "great question"
_PAUSED_YES_FIRST = ("that works", "sounds good", "sounds great", "agreed", "perfect", "alright", "great", "good",
                     "lovely", "right")
_PAUSE = ",.!;:，。！；：-–—"
# a message that puts it off is a no too: nothing is filed on it ("先别提交，我再量量尺寸", "hold on, not yet")
_NO_FIRST = ("no", "nope", "nah", "not yet", "hold on", "hang on", "hold off", "don't submit", "dont submit",
             "不对", "不是", "不要", "不用", "不行", "不了", "先别", "先不", "等等", "等一下", "稍等", "否", "不")
# a filler or a yes: only a yes where what follows restates what the form holds ("嗯 就灰色" to
# "换成“灰色的”？", "好，就XL" to "换成“XL码”？"), so :func:`after_leading_yes` takes them,
# :func:`leading_yes_or_no` does not
_SOFT_YES_FIRST = ("嗯嗯", "嗯", "恩恩", "恩", "好", "okay", "ok")
_TURNS_ROUND = re.compile(r"\b(?:no|not|nope|wait|hold on|one sec|but|however|actually|wrong|think|later|tomorrow|"
                          r"maybe)\b|n't|不|没|别|等|但|可是|不过|算了|错|想想|考虑|明天|再说|稍|问问", re.IGNORECASE)
# words of a no that say yes: "没问题", "no problem"
_NOT_TURNING = re.compile(r"没错|没问题|\bno (?:problem|worries)\b", re.IGNORECASE)
# a confirmation that says again what is held and goes ahead at its end: "red's good, thanks, submit it",
# "大一码对了，交了吧", "瑜伽垫的原因就这个，提交吧", "换藏青挺好，就按这个来"
# ("麻烦提交", "please submit it", "照常退": as it was)
_GO_AHEAD = (r"(?:please\s+)?(?:go ahead and\s+)?(?:submit(?:\s+(?:it|that|away))?|go on|go ahead|confirm(?:\s+it)?|"
             r"proceed|do it|(?:file|lodge|send|put) (?:it|that|the (?:refund|exchange|request|change))"
             r"(?:\s+(?:in|off|through))?)|(?:(?:麻烦|请)(?:你|您)?|帮我)*(?:交上去吧?|提交吧?|交了吧?|确认|照旧|"
             r"就?(?:按|照)这个(?:理由|原因|颜色|尺码)?(?:来|退|换|改|办)?吧?|就这么(?:换|办|退|改|定了?)吧?|"
             r"照常(?:退|换|改|办|提交)?吧?)")
# words of a yes that only say the swap or the choice is right: "a white mat in place of the red one",
# "green instead of pink, that's the plan", "the band and colour I meant", "a dark green bottle suits me fine"
_SWAPPING_WORDS = (r"\b(?:in place of|instead of|instead|that(?:'?s| is) the plan|"
                   r"(?:what )?i (?:meant|wanted|had in mind)|suits me(?: fine)?|works for me|fine by me)\b")
# what a yes may add without saying anything new: "对 就是白色" -> "白色", "yes that's right, go ahead" -> ""
# (praise of what is held confirms it too: "是，米白挺好", "yes, grey is perfect")
# (the go-ahead first: "提交", "确认", "submit it", "go ahead", "do it", "就这么办" are among its words)
_CONFIRMING_WORDS = re.compile(rf"(?<![a-z])(?:{_GO_AHEAD})(?![a-z])|"
                               r"就是|就这样|就这个|这个|那个|没错|没问题|对的|是的|可以|麻烦了|谢谢|"
                               r"挺好|很好|好看|[这那]么换|这样换|我?满意|换货|退款|退货|[吧的了呀啊哈嗯就]|"
                               rf"{_SWAPPING_WORDS}|"
                               r"\b(?:that'?s|that|it'?s|it|is|right|correct|exactly|fine|please|and|"
                               r"no problem|no worries|thanks|thank you|the|one|just|great|good|perfect|"
                               r"nice|lovely)\b", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[\W_]+")
_CONTRACTED_IS = re.compile(r"(?<=[a-z])['\u2019]s\b", re.IGNORECASE)  # "grey's": "grey is"


def leading_yes_or_no(text: str) -> Optional[bool]:
    """True when a message starts with a plain yes and nothing after it says otherwise
    ("对 就是白色", "yes, white is right"), False when it starts with a plain no ("不是，我要
    白色的", "no, the blue one"), else None: a question, a message that is only the yes
    or no (which the intent classifier reads well), anything else."""
    found = _leading(text)
    return None if found is None else found[0]


def after_leading_yes(text: str) -> Optional[str]:
    """What a message that starts with a plain yes (:func:`leading_yes_or_no`), or with "嗯" /
    "ok", says after it, without the words that only confirm ("对 就是白色" -> "白色", "嗯 就灰色"
    -> "灰色", "yep, grey's the one" -> "grey", "yes that's right" -> ""); None for any other
    message. The caller takes it as a yes only when that rest restates what it holds; after
    "嗯" / "ok" the rest must say something ("嗯……", "ok fine": None)."""
    found = _leading(text, soft=True)
    if found is None or not found[0]:
        return None
    _, rest, word = found
    rest = _CONTRACTED_IS.sub(" is", rest)  # "grey's the one": "grey is the one"
    rest = _PUNCTUATION.sub(" ", _CONFIRMING_WORDS.sub(" ", rest)).strip()
    return None if word in _SOFT_YES_FIRST and not rest else rest


def restates(rest: str, held: str) -> bool:
    """Whether ``rest`` (what follows a yes: :func:`after_leading_yes`) says again what ``held``
    holds: found in it, case aside, and not inside a Latin word or number of it ("XL" in "XL码",
    "灰色" in "灰色的"; not "L码" in "XL码")."""
    said = re.escape(rest.strip().lower())
    return bool(said) and re.search(rf"(?<![a-z0-9]){said}(?![a-z0-9])", held.lower()) is not None


def _leading(text: str, soft: bool = False) -> Optional[Tuple[bool, str, str]]:
    """(yes or no, the rest, the word) of a message that starts with a plain yes or no
    (``soft``: or with "嗯" / "ok"), or None."""
    stripped = (text or "").strip().replace("\u2019", "'")  # "that’s right": "that's right"
    if looks_like_question(stripped):
        return None
    yes_words = _YES_FIRST + _PAUSED_YES_FIRST + (_SOFT_YES_FIRST if soft else ())
    for words, answer in ((_NO_FIRST, False), (yes_words, True)):  # "不是" before "是"
        for word in words:
            if not stripped.lower().startswith(word):
                continue
            rest = stripped[len(word):]
            latin = re.match(r"[a-z]", word) is not None
            if not rest.strip(" ,，。.!！~～了") or (latin and rest[:1].isalpha()):
                continue  # only the word, or the start of another word ("yesterday" is not "yes")
            if (len(word) == 1 or word == "不了") and not latin and rest[:1] not in " ,，。.!！~～、":
                continue  # "是这样的", "不合适", "不了解": the word starts another word
            if word in _PAUSED_YES_FIRST and rest.lstrip(" ")[:1] not in _PAUSE:
                continue  # "good morning", "right away"
            if answer and _TURNS_ROUND.search(_NOT_TURNING.sub("", rest)):
                return None
            return answer, rest, word
    return None


# a plain yes at the end says it too, after what is held ("dark green, yes, that's the one I meant")
_PLAIN_YES = r"yes|yep|yeah|correct|对的|是的|没错|没问题"
_AGREEING = (r"okay|ok|right|fine|good|great|perfect|thanks|thank you|please|"
             r"that'?s (?:the one|it|right)(?: i (?:meant|wanted|asked for))?|"
             r"that'?s (?:exactly )?what i(?:'m| am)? (?:after|meant|wanted|want|need|needed|asked for)|"
             r"对了|可以|行|好的|好嘞|就这个|就这样|就行|挺好|"
             r"[吧了哈啊呀]")
_TAIL = re.compile(rf"(?:[\s,，.。!！~～:：;；]*(?:(?P<go>{_GO_AHEAD})|(?P<yes>{_PLAIN_YES})|{_AGREEING})(?![a-z]))"
                   rf"[\s,，.。!！~～]*$", re.IGNORECASE)
_RESTATING_WORDS = re.compile(rf"{_SWAPPING_WORDS}|"
                              r"的?原因|理由|is what i (?:asked|wanted)(?: for)?|"
                              r"(?:is|was) (?:the )?(?:reason|one|right|correct)|"
                              r"就这个|就这样|就行|对了|可以|挺好|很好|好嘞|换成|换|[这那][单件条双个]|[的吧了哈就]|'s\b",
                              re.IGNORECASE)
_FILLER_WORDS = {"a", "an", "the", "is", "it", "its", "that", "this", "one", "and", "with", "of", "on", "in", "to", "for",
                 "reason", "problem", "issue", "good", "right", "correct", "fine", "me", "my", "i", "size", "colour",
                 "color"}


def confirms_after(text: str, held: Sequence[str]) -> bool:
    """Whether a message goes ahead or says a plain yes at its end ("submit it", "提交吧", "就按这个来",
    "go on", "yes") after saying only what ``held`` holds, or nothing ("red's good, thanks, submit
    it" when the wish is red; "kit with broken wires, correct, go on" when the reason speaks of the
    kit's wires): :func:`says_again` of the words before it; no question, nothing that turns it
    round ("blue's good, submit it" when the wish is red says something new)."""
    stripped = (text or "").strip()
    if not stripped or looks_like_question(stripped):
        return False
    head, went = stripped, False
    while True:
        found = _TAIL.search(head)
        if not found or found.start() == len(head):
            break
        went = went or bool(found.group("go") or found.group("yes"))
        head = head[:found.start()]
    if not went or _TURNS_ROUND.search(_NOT_TURNING.sub("", head)):
        return False
    words = _content_words(head)
    return not words or _mostly_found(words, held)  # only a yes and a go-ahead ("ok, submit it")


def says_again(text: str, held: Sequence[str]) -> bool:
    """Whether a message says again what ``held`` holds, and something: of its words but for the
    ones that only confirm or say yes ("好", "明白", "就这个", "the one"), two thirds at least found
    in the held values (:func:`_found_in`): "卫衣大一码" when the item is 儿童连帽卫衣 and the wish 大一码."""
    words = _content_words(text)
    return bool(words) and _mostly_found(words, held)


def _content_words(text: str) -> List[str]:
    text = _CONTRACTED_IS.sub(" is", text or "")
    return [w for w in re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]+", _RESTATING_WORDS.sub(" ", text).lower())
            if w not in _FILLER_WORDS and not only_yes_or_no(w)]


def _mostly_found(words: Sequence[str], held: Sequence[str]) -> bool:
    said = " ".join(held).lower()
    return 3 * sum(_found_in(word, said) for word in words) >= 2 * len(words)


def _found_in(word: str, said: str) -> bool:
    """Whether ``said`` holds ``word``: a Chinese run by its first two characters, what a Chinese
    phrase qualifies its last word with ("灰色杯子" in "灰色的"), or when two thirds of its characters
    are in pairs of it found there ("卫衣大一码" in "连帽卫衣 大一码"; not "蓝色围巾" in "灰色 羊绒围巾":
    only 围巾 is; one character: itself), or a run of two characters (and a 子 or 儿 after them)
    each found there ("白袜子" in "纯白色 运动袜"); a Latin word by its first four letters ("dumbbell"
    in "dumbbells")."""
    if "\u4e00" <= word[0] <= "\u9fff":
        if word[:2] in said:
            return True
        short = word[:-1] if word[-1] in "子儿" else word  # "白袜子": 白 of 纯白色, 袜 of 运动袜
        if len(short) == 2 and all(char in said for char in short):
            return True
        covered = {i + j for i in range(len(word) - 1) if word[i:i + 2] in said for j in (0, 1)}
        return len(word) > 1 and 3 * len(covered) >= 2 * len(word)
    return re.search(rf"(?<![a-z0-9]){re.escape(word[:4])}", said) is not None


# what a customer says before a question without saying what it is about: "hmm first -", "before I
# pick,", "if I go ahead,", "quick question:", "btw", "先问下，", "等下 我先问一下", "对了，"
_LEAD_IN_SEPARATOR = r"[\s,.:;!?\-–—~，。：；！？～、]"
_LEAD_IN_WORDS = (
    # English words that lead in only before a comma, a dash, a colon ("first -", "actually,")
    r"(?:first|first of all|firstly|actually|right|then|so first|quickly|real quick)\s*[,.:;!?\-–—~]"
    r"|(?:" + _LEAD_IN_WORDS_EN + r"|ah|h?m+|er+m?|by the way|"
    r"one sec|one second|hold on|hang on|(?:a |one )?(?:quick|small|side|random|other|last|another|more|separate) "
    r"(?:question|q|thing)|one (?:more )?(?:question|thing)|just (?:wondering|curious|checking|asking)|"
    r"i (?:was|am|'m) (?:wondering|curious)|"
    r"before (?:i|we|you) \w+(?: to)?(?: (?:it|that|this|them|on|ahead|yes|no))?|before (?:the|my) \w+|"
    r"(?:totally |completely )?(?:unrelated|off[- ]topic)|while i have you|while i'm at it|"
    r"while i (?:dig|look|search|hunt|find|check)\w*(?: (?:it|that|this|them|up|for|out|the|my|order|number))*|"
    r"before (?:that|then|i forget)|if i (?:go ahead|do (?:it|that|this)|decide to|end up)"
    r"(?: with (?:it|that|this|the \w+))?|in the meantime|meanwhile)(?![\w'])"
    # Chinese: particles and lead-ins ("先问下", "对了", "等一下"); "那个" and "还有" only before a pause;
    # "X之前" / "X前" only before a question about to be asked ("发地址之前问一下", "说原因前先问个事")
    r"|嗯+|呃+|额+|哦+|噢+|话说|题外话|对了|哦对了|另外|顺便(?:问(?:一?下|问|个问题))?|"
    r"(?:我)?(?:先|想|再)?问(?:一?下|一句|问|一?个(?:[\u4e00-\u9fff]{1,4}的)?(?:问题|事))[哈呀啊呗]?|请问一下|等(?:一?下|等)|稍等|"
    r"(?:在)?(?:那|这|提交|确认|填|选|决定)之前|[\u4e00-\u9fff]{1,6}?之?前(?=(?:我)?先?问)|"
    r"(?:那个|还有(?:个|一个)?(?:问题|事)?)(?=" + _LEAD_IN_SEPARATOR + r")")
# a first sentence that only holds the conversation ("let me dig it up.", "我翻一下订单号。"), when
# a lead-in follows it: "give me a sec to find the order. meanwhile, …", "单号我等下发你。先问一句，…"
_HOLDING_SENTENCE = r"[^.。!！?？]{1,60}?[.。!！]\s*(?=(?:" + _LEAD_IN_WORDS + r"))"
_LEAD_IN = re.compile(
    r"^(?:" + _HOLDING_SENTENCE + r")?(?:\s*(?:" + _LEAD_IN_WORDS + r")" + _LEAD_IN_SEPARATOR + r"*)+",
    re.IGNORECASE)


def without_lead_in(text: str) -> Optional[str]:
    """The question after what a customer says first without saying what it is about ("hmm first
    - once the beans are back, how many days before the money goes out?" -> "once the beans are
    back, …"; "等下 我先问一下 你们能送到新疆吗" -> "你们能送到新疆吗"), or None when the message
    does not start so or nothing would be left. Chatter that names something ("I paid with a
    Mastercard, will I lose anything?") is kept: it may say what the question is about."""
    parts = _split_lead_in(text)
    return parts[1] if parts else None


def _split_lead_in(text: str) -> Optional[Tuple[str, str]]:
    """(the lead-in, the question after it) of :func:`without_lead_in`, or None."""
    found = _LEAD_IN.match(text or "")
    rest = text[found.end():].strip() if found and found.end() else ""
    return (found.group(0), rest) if rest and _WORD.search(rest) else None


# lead-in words that say a question of another matter follows ("quick question", "before I type
# it", "顺便问一下", "我先问个好奇的事"), not only a pause ("ok", "wait", "嗯", "等一下")
_ANNOUNCING = re.compile(r"question|\bq\b|\bthing\b|by the way|\bbtw\b|wondering|curious|checking|asking|unrelated|"
                         r"off[- ]topic|\bbefore\b|\bwhile\b|meantime|meanwhile|问|题外话|对了|顺便|另外|前",
                         re.IGNORECASE)


def announces_question(text: str) -> bool:
    """Whether a question starts by saying that it asks something aside ("地址马上发。我先问个好奇的事：
    蚂蚁怎么认得回家的路？", "before I type the address: will the invoice show …?"): a lead-in
    (:func:`without_lead_in`) with a word that announces a question, not only a pause ("wait, can
    I stop this?"), and nothing that takes back what the customer was doing ("等等 我先问问前台能不能
    代收 先不改了": :func:`changes_mind`)."""
    parts = _split_lead_in(text)
    return bool(parts and looks_like_question(text) and _ANNOUNCING.search(parts[0]) and not changes_mind(text))


def looks_like_question(text: str) -> bool:
    """Whether a message reads as a question: a question mark, a Chinese question
    particle or word, or an English question word first (after lead-in words such as
    "ok and") or after a comma."""
    return bool(_QUESTION.search(text))


# A negation and, a few words later in the same clause, what it negates: "不用转人工",
# "别给我转人工", "no need for a human", "I don't want to talk to an agent".
_NEGATIONS_ZH = ("没必要", "用不着", "不需要", "不用", "不要", "不想", "不必", "无需", "别", "甭")
_NEGATIONS_EN = (("no", "need", "for"), ("no", "need", "to"), ("no", "need", "of"), ("don't", "need"),
                 ("do", "not", "need"), ("dont", "need"), ("don't", "want"), ("do", "not", "want"),
                 ("dont", "want"), ("don't",), ("do", "not"), ("dont",), ("no",), ("not",), ("without",))
# between a negation and its object: words that ask for it after all ("不用了我要转人工", "no I want
# a human"), that make the negated thing something else ("不用客气", "不要机器人客服", "no AI agent")
_BREAKERS_ZH = ("要", "想", "请", "还是", "客气", "谢", "机器", "智能", "ai", "自动")
_BREAKERS_EN = frozenset("i we you want rather instead please bot bots chatbot robot ai virtual automated machine".split())
# a clause with a bot word is about the bot: "don't transfer me to a bot again", "不要机器人客服"
_BOT_WORDS = re.compile(r"机器|智能|\bai\b|\b(?:bot|bots|chatbot|robot|virtual|automated|machine)\b")
# a negated object that is the subject of what follows ("no agent has contacted me"), or a negation
# after an auxiliary ("I was not transferred", "I have not been connected"): a complaint that no one came
_AFTER_OBJECT_EN = frozenset("has have had is was were will did does can could would".split())
_BEFORE_NEGATION_EN = frozenset("was were have has had been".split())
_NEGATION_GAP = 4  # Chinese characters or English words
# clauses end at punctuation, at "but", and at a space between Chinese characters ("不用了 转人工")
_CLAUSE = re.compile(r"[,，。.!！?？;；、:：\n]+|\bbut\b|(?<=[\u3400-\u9fff])\s+|\s+(?=[\u3400-\u9fff])", re.IGNORECASE)
_CLAUSE_WITH_END = re.compile(r"((?:(?!" + _CLAUSE.pattern + r").)+)(" + _CLAUSE.pattern + r"|$)", re.IGNORECASE | re.S)
_EN_TOKEN = re.compile(r"[a-z0-9']+")


def negates(text: str, objects: Sequence[str]) -> bool:
    """Whether a clause of ``text`` negates one of ``objects`` (words or phrases, Chinese
    or English): a negation, then at most four Chinese characters or English words, then
    the object, with nothing between that asks for it after all or makes it the bot's.
    "不用转人工" and "no need for a human" negate "人工" and "human"; "不用了，转人工吧",
    "我不要机器人，转人工", "I don't want a bot, I want a human", a clause that is a question
    ("why don't you transfer me to a human") and a complaint that no one came ("no agent
    has contacted me yet", "I was not transferred to an agent") do not."""
    text = (text or "")[:MAX_CHARS].replace("\u2019", "'").replace("\u2018", "'").lower()
    zh = [o.lower() for o in objects if o and _CJK.search(o)]
    en = [tuple(_EN_TOKEN.findall(o.lower())) for o in objects if o and not _CJK.search(o)]
    en = [words for words in en if words]  # an object of punctuation only names nothing
    parts = _CLAUSE_WITH_END.findall(text)  # (clause, what ends it): "no human???" is a question
    return any(not looks_like_question(clause + end) and not _BOT_WORDS.search(clause)
               and (_zh_negates(clause, zh) or _en_negates(_EN_TOKEN.findall(clause), en))
               for clause, end in parts if clause.strip())


def _zh_negates(clause: str, objects: Sequence[str]) -> bool:
    if not objects:
        return False
    squeezed = clause.replace(" ", "")
    for negation in _NEGATIONS_ZH:
        for match in re.finditer(re.escape(negation), squeezed):
            rest = squeezed[match.end():]
            if negation == "别" and (rest[:1] in ("的", "人", "处") or squeezed[max(match.start() - 1, 0):match.start()] in
                                     ("特", "区", "分", "识", "类", "级", "性")):
                continue  # "别的客服", "别人", "特别": not a negation
            if rest.startswith("了"):
                continue  # "不用了转人工": the negation is complete before what follows
            for gap in range(_NEGATION_GAP + 1):
                if any(b in rest[:gap] for b in _BREAKERS_ZH):
                    break
                if any(rest.startswith(o, gap) for o in objects):
                    return True
    return False


def _en_negates(tokens: Sequence[str], objects: Sequence[Tuple[str, ...]]) -> bool:
    if not objects or not tokens:
        return False
    for start in range(len(tokens)):
        for negation in _NEGATIONS_EN:
            if tuple(tokens[start:start + len(negation)]) != negation:
                continue
            if start and tokens[start - 1] in _BEFORE_NEGATION_EN:
                break  # "I was not transferred", "have not been connected"
            after = start + len(negation)
            for gap in range(_NEGATION_GAP + 1):
                if any(t in _BREAKERS_EN for t in tokens[after:after + gap]):
                    break
                at = after + gap
                for obj in objects:
                    found = tokens[at:at + len(obj)]
                    if len(found) == len(obj) and all(t in (o, o + "s") for t, o in zip(found, obj)):
                        following = tokens[at + len(obj):at + len(obj) + 1]
                        if not (following and following[0] in _AFTER_OBJECT_EN):
                            return True
            break  # the longest negation at this token only
    return False


def clauses(text: str) -> List[str]:
    """The clauses of ``text`` as ``negates`` reads them (split at punctuation, at "but"
    and at a space beside Chinese characters), stripped; empty ones left out."""
    return [part.strip() for part in _CLAUSE.split((text or "")[:MAX_CHARS]) if part and part.strip()]


def unnegated_clauses(text: str) -> str:
    """The clauses of ``text`` (:func:`clauses`) that hold no word of a no, joined by a comma:
    what a correction says is so ("我弄混了，该换的是那个充电宝，跑步鞋不用换" -> "我弄混了，该换的是那个
    充电宝"; "it's the power bank, not the shoes" -> "it's the power bank")."""
    return "，".join(part for part in clauses(text) if not _NO_WORDS.search(part) and "n't" not in part.lower())


def sentences(text: str) -> List[str]:
    """The sentences of ``text``, each with its end mark and the white space
    after it: joined, they give ``text`` back."""
    return _SENTENCE.findall(text)


# a full stop that ends no sentence: "e.g.", "i.e.", "vs.", "approx.", and "No." before a number
_ABBREVIATION = re.compile(r"(?:\be\.g|\bi\.e|\bvs|\bapprox)\.$", re.IGNORECASE)
_NUMBER_SIGN = re.compile(r"\bno\.$", re.IGNORECASE)


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the full stop that ends ``text[:end]`` ends a sentence."""
    head = text[:end]
    return not (_ABBREVIATION.search(head) or _NUMBER_SIGN.search(head) and re.match(r"\s*\d", text[end:]))


def up_to_last_sentence_end(text: str) -> str:
    """``text`` up to its last sentence end ("" when it has none), stripped: a full stop,
    question or exclamation mark ("e.g." and the "No." of "No. 5" are none); a semicolon,
    written "…", when no such end comes in the second half of the text."""
    full, weak = [], []
    for match in _SENTENCE_END.finditer(text):
        if match.group() in "；;":
            weak.append(match.end())
        elif _ends_sentence(text, match.end()):
            full.append(match.end())
    if full and (not weak or 2 * full[-1] >= len(text) or full[-1] > weak[-1]):
        return text[: full[-1]].strip()
    if weak:
        return text[: weak[-1] - 1].strip() + "…"
    return ""


def tokens(text: str) -> List[str]:
    """Lower-cased tokens for n-grams: each Chinese character, each Latin word or
    number (punctuation dropped)."""
    return TOKEN.findall(text.lower())


def words(text: str) -> List[str]:
    """Lower-cased search words of a Chinese, English or mixed text (jieba's
    search mode, which also yields the short words inside long ones), without
    punctuation and stop words."""
    import jieba

    jieba.setLogLevel(60)  # no "Building prefix dict" chatter
    out = []
    for token in jieba.lcut_for_search(text.lower()):
        token = token.strip()
        if token and _WORD.search(token) and token not in _STOPWORDS:
            out.append(token)
    return out
