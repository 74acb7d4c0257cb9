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
from typing import List, Optional, Sequence

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


_QUESTION = re.compile(
    r"[?？]|[吗呢么嘛][\s。！!~～]*$|什么|怎么|怎样|多少|多久|多长时间|几[天个点号时]|哪|谁|啥|咋|为何|如何|何时|"
    r"是否|能不能|可不可以|会不会|有没有|是不是|"
    # an English question word first, after words that only lead in ("ok and how long does it take")
    r"^\s*(?:(?:ok|okay|and|so|but|also|oh|well|hmm+|um+|uh+|btw|hey|hi|then|wait|sorry|right)[\s,]+)*"
    r"(?:what|how|when|where|why|which|who|whose|do|does|did|can|could|is|are|was|were|will|would|should|"
    r"may|have|has)\b|"
    # or a wh-word after a comma or a sentence ("I paid by card, how long does that take")
    r"[,，.;!]\s*(?:what|how|when|where|why|which|who)\b",
    re.IGNORECASE)


# the words of a message that only says yes or no (and please / thanks): "ok", "yes please",
# "不用了", "确认", "好的谢谢"; what a knowledge base has no answer for
_YES_NO_WORDS = ("yes", "yeah", "yep", "yup", "ok", "okay", "kk", "k", "sure", "fine", "alright", "right",
                 "correct", "confirm", "confirmed", "got it", "cool", "great", "perfect", "no", "nope", "nah",
                 "not needed", "no need", "please", "pls", "thanks", "thank you", "thx",
                 "好的", "好吧", "好滴", "好", "行吧", "行", "可以", "嗯嗯", "嗯", "恩", "是的", "是", "对的", "对",
                 "没错", "确认", "确定", "不用了", "不用", "不要了", "不要", "不了", "没有", "没事", "不", "否",
                 "谢谢", "麻烦了", "哦", "噢", "👍", "👌", "🙏")
_YES_NO_WORD = "|".join(re.escape(w) for w in sorted(_YES_NO_WORDS, key=len, reverse=True))
_ONLY_YES_OR_NO = re.compile(rf"[\W_]*(?:(?:{_YES_NO_WORD})(?![a-z])[\W_]*)+", re.IGNORECASE)


def only_yes_or_no(text: str) -> bool:
    """Whether a message only says yes or no ("ok", "yes please", "不用了", "确认"), with
    nothing that could be looked up ("就是那个嘛，你懂的" and "so about that" say more)."""
    return bool(text) and bool(_ONLY_YES_OR_NO.fullmatch(text.strip()))


# words with which a customer takes back what they were doing: "算了，还是换货吧",
# "actually, can I swap them instead?", "on second thought, just refund it"
_CHANGES_MIND = re.compile(r"算了|还是|改主意|不退了|不换了|不改了|\binstead\b|\brather\b|on second thought|"
                           r"changed? my mind|\bactually\b", re.IGNORECASE)


def changes_mind(text: str) -> bool:
    """Whether a message takes back what the customer was doing ("算了，还是换货吧",
    "actually, can I swap them instead?")."""
    return bool(_CHANGES_MIND.search(text or ""))


# a message that starts with a plain yes, or a plain no, and says more after it: "对 就是白色",
# "yes, white is right", "不是，我要白色的"; the rest must not turn it round ("ok wait, no")
_YES_FIRST = ("yes", "yeah", "yep", "yup", "sure", "correct", "confirmed", "confirm", "ok", "okay",
              "是的", "对的", "没错", "确认", "确定", "好的", "可以", "嗯嗯", "对", "是", "嗯", "行")
_NO_FIRST = ("no", "nope", "nah", "不对", "不是", "不要", "不用", "不行", "否", "不")
_TURNS_ROUND = re.compile(r"\b(?:no|not|nope|wait|but|however|actually|wrong)\b|不|没|别|等等|等一下|但|可是|不过|算了|错",
                          re.IGNORECASE)


def leading_yes_or_no(text: str) -> Optional[bool]:
    """True when a message starts with a plain yes and nothing after it says otherwise
    ("对 就是白色", "yes, white is right"), False when it starts with a plain no ("不是，我要
    白色的", "no, the blue one"), else None (also for a message that is only the yes or no,
    which the intent classifier reads well)."""
    stripped = (text or "").strip()
    for words, answer in ((_NO_FIRST, False), (_YES_FIRST, True)):  # "不是" before "是"
        for word in words:
            if not stripped.lower().startswith(word):
                continue
            rest = stripped[len(word):]
            latin = re.match(r"[a-z]", word) is not None
            if not rest.strip(" ,，。.!！~～") or (latin and rest[:1].isalpha()):
                continue  # only the word, or the start of another word ("okay" is not "ok" + "ay")
            if len(word) == 1 and not latin and rest[:1] not in " ,，。.!！~～、":
                continue  # "是这样的", "不合适": one Chinese character starts another word
            if answer and _TURNS_ROUND.search(re.sub("没错|没问题", "", rest)):
                return None
            return answer
    return None


def looks_like_question(text: str) -> bool:
    """Whether a message reads as a question: a question mark, a Chinese question
    particle or word, or an English question word first (after lead-in words such as
    "ok and") or after a comma."""
    return bool(_QUESTION.search(text))


# A negation and, a few words later in the same clause, what it negates: "不用转人工",
# "别给我转人工", "no need for a human", "I don't want to talk to an agent".
_NEGATIONS_ZH = ("没必要", "用不着", "不需要", "不用", "不要", "不想", "不必", "无需", "别", "甭")
_NEGATIONS_EN = ("no need for", "no need to", "no need of", "don't need", "do not need", "dont need",
                 "don't want", "do not want", "dont want", "don't", "do not", "dont", "no", "not", "without")
# words between a negation and its object that ask for something after all: "不用了我要转人工",
# "no I want a human" (a clause that changes its mind); "but" also ends a clause
_BREAKERS_ZH = ("要", "想", "请", "还是")
_BREAKERS_EN = frozenset("i we want rather instead please".split())
_NEGATION_GAP = 4  # Chinese characters or English words
# clauses end at punctuation, at "but", and at a space between Chinese characters ("不用了 转人工")
_CLAUSE = re.compile(r"[,，。.!！?？;；、:：\n]+|\bbut\b|(?<=[\u3400-\u9fff])\s+|\s+(?=[\u3400-\u9fff])", re.IGNORECASE)


def negates(text: str, objects: Sequence[str]) -> bool:
    """Whether a clause of ``text`` negates one of ``objects`` (words or phrases, Chinese
    or English): a negation, then at most four Chinese characters or English words, then
    the object, with nothing between that asks for it after all. "不用转人工" and "no need
    for a human" negate "人工" and "human"; "不用了，转人工吧", "我不要机器人，转人工" and
    "I don't want a bot, I want a human" do not."""
    return any(_clause_negates(clause.strip().lower(), [o.lower() for o in objects if o])
               for clause in _CLAUSE.split(text or ""))


def _clause_negates(clause: str, objects: Sequence[str]) -> bool:
    for negation in _NEGATIONS_ZH:
        for match in re.finditer(re.escape(negation), clause):
            rest = clause[match.end():].replace(" ", "")
            for gap in range(_NEGATION_GAP + 1):
                if any(b in rest[:gap] for b in _BREAKERS_ZH):
                    break
                if any(rest[gap:].startswith(o) for o in objects):
                    return True
    english = re.findall(r"[a-z']+", clause)
    line = " ".join(english)
    for negation in _NEGATIONS_EN:
        for match in re.finditer(rf"\b{re.escape(negation)}\b", line):
            after = line[match.end():].split()
            for gap in range(min(_NEGATION_GAP, len(after)) + 1):
                if any(w in _BREAKERS_EN for w in after[:gap]):
                    break
                if any(" ".join(after[gap:]).startswith(o) and _ends_word(" ".join(after[gap:]), o) for o in objects):
                    return True
    return False


def _ends_word(text: str, prefix: str) -> bool:
    """Whether ``prefix`` of ``text`` ends at a word boundary ("agent" in "agents", not "agenda")."""
    rest = text[len(prefix):]
    return not rest or not rest[0].isalpha() or rest[0] == "s" and (len(rest) == 1 or not rest[1].isalpha())


def sentences(text: str) -> List[str]:
    """The sentences of ``text``, each with its end mark and the white space
    after it: joined, they give ``text`` back."""
    return _SENTENCE.findall(text)


_ABBREVIATION = re.compile(r"(?:\be\.g|\bi\.e|\betc|\bvs|\bapprox|\bno|\bnos)\.$", re.IGNORECASE)


def up_to_last_sentence_end(text: str) -> str:
    """``text`` up to its last sentence end ("" when it has none), stripped: a full stop,
    question or exclamation mark ("e.g." is none); else a semicolon, written as "…"."""
    full, weak = [], []
    for match in _SENTENCE_END.finditer(text):
        if match.group() in "；;":
            weak.append(match.end())
        elif not _ABBREVIATION.search(text[: match.end()]):
            full.append(match.end())
    if full:
        return text[: full[-1]].strip()
    return text[: weak[-1] - 1].strip() + "…" if weak else ""


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
