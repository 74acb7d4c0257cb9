"""Typos repaired in what GPTIntentClassifier's features read: "refnd please",
"i want to retrun this", "exhange pls".

A typo is a word the sentence encoders have never seen whole: they read it as
pieces of other words, and the head's character n-grams lose the word's middle.
The corrector learns the English words of the bot's training examples and how
often each is used. A word of a message that has ``MIN_LENGTH`` letters or more
and is neither one of them nor an English word (pyspellchecker's English word
list) becomes the bot's own word one edit away (a letter deleted, inserted,
changed, or two neighbours swapped) that is an English word: the one the
training examples use most. Nothing else changes: Chinese, digits, words that
are pinyin (the names in an address typed in English: "Changle Road" is not
"change road", "Heping District" not "helping") and words with no such
neighbour stay as typed.

Only the classifier's reading changes: the message's text, its entities and
what forms store stay as the customer typed them.
"""

import re
from collections import Counter
from functools import lru_cache
from typing import Any, Dict, Iterable, Mapping

WORD = re.compile(r"[A-Za-z]+")  # runs of ASCII letters: English words, not Chinese, digits or pinyin-with-tones
MIN_LENGTH = 4  # shorter words have too many neighbours ("pls", "thx", "ur" are left alone)
_MEMO = 4096  # words whose reading each corrector remembers
# the syllables of Mandarin pinyin, without tones: a word made of them is a Chinese name
PINYIN = frozenset("""
a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao ce cen ceng
cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun chuo ci cong cou cu
cuan cui cun cuo da dai dan dang dao de dei den deng di dia dian diao die ding diu dong dou du duan dui dun duo
e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan
guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo ji jia jian
jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke kei ken keng kong kou ku kua kuai kuan
kuang kui kun kuo la lai lan lang lao le lei leng li lia lian liang liao lie lin ling liu lo long lou lu luan lun
luo lv lve ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei
nen neng ni nian niang niao nie nin ning niu nong nou nu nuan nuo nv nve o ou pa pai pan pang pao pei pen peng pi
pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren
reng ri rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao she shei shen
sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te
teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao
xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai zan zang
zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui
zhun zhuo zi zong zou zu zuan zui zun zuo
""".split())


def is_pinyin(word: str) -> bool:
    """Whether ``word`` (lower-case) is a run of pinyin syllables ("changle", "xuhui", "tianfu")."""
    reachable = [True] + [False] * len(word)  # reachable[i]: word[:i] is syllables
    for end in range(1, len(word) + 1):
        reachable[end] = any(reachable[start] and word[start:end] in PINYIN for start in range(max(0, end - 6), end))
    return reachable[-1]


@lru_cache(maxsize=1)
def english() -> Any:
    """pyspellchecker's English word list with frequencies (loaded once per process)."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


class SpellingCorrector:
    """``correct(text)``: ``text`` with its typos replaced by the bot's words."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts: Dict[str, int] = {str(word): int(n) for word, n in counts.items()}
        self._english = english()
        self._corrected = lru_cache(maxsize=_MEMO)(self._corrected)  # type: ignore[method-assign]

    @classmethod
    def fit(cls, texts: Iterable[str]) -> "SpellingCorrector":
        """The English words of the training texts, lower-cased, with their counts."""
        counts: Counter = Counter()
        for text in texts:
            counts.update(word.lower() for word in WORD.findall(text))
        return cls(counts)

    def correct(self, text: str) -> str:
        """``text`` with each typo replaced (its case kept: "REFND" -> "REFUND")."""
        return WORD.sub(lambda match: self._replacement(match.group(0)), text)

    def _replacement(self, word: str) -> str:
        lower = word.lower()
        fixed = self._corrected(lower)
        if fixed == lower:
            return word
        if word.isupper():
            return fixed.upper()
        return fixed.capitalize() if word[0].isupper() else fixed

    def _corrected(self, word: str) -> str:
        """The bot's word for ``word`` (lower-case), or ``word`` when it is no typo or has no such word."""
        if len(word) < MIN_LENGTH or word in self.counts or word in self._english or is_pinyin(word):
            return word
        candidates = [c for c in self._english.edit_distance_1(word) if c in self.counts and c in self._english]
        if not candidates:
            return word
        # the bot's most used; then English's most frequent; then alphabetical, so the choice is stable
        return min(candidates, key=lambda c: (-self.counts[c], -self._english[c], c))

    def to_json(self) -> Dict[str, Any]:
        """What ``from_json`` reads back (stored beside the head, never as a pickle)."""
        return {"words": dict(sorted(self.counts.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SpellingCorrector":
        return cls(data.get("words") or {})
