"""Phrase tables for the wording checks, kept apart from the checking so they read as data.

Lower-case regular expressions, matched case-insensitively as whole words or
phrases (``NAMED_BLAME`` is case-sensitive: the capital letter is what makes a
name). English only; see :mod:`policies.wording` for how each table is used.
"""

from __future__ import annotations

from policies.detect import ACRONYMS as _DETECTION_ACRONYMS

__all__ = [
    "ABSOLUTE", "ACRONYMS", "APOLOGY", "BLAME", "CONCRETE_TIME", "EMOTIONAL", "NAMED_BLAME",
    "PERSONAL", "VAGUE",
]  # fmt: skip

# --- phrase tables ---------------------------------------------------------------------
# Lower-case regular expressions, matched case-insensitively as whole words or phrases.
# Apostrophes are written ' ; a draft's typographic ’ and ‘ are read as ' before matching.

# fmt: off
_WHO = (r"(?:vendor|provider|supplier|partner|contractor|subcontractor|data ?cent(?:er|re)|"
        r"hosting (?:company|provider)|cloud provider|third[- ]party(?: vendor| provider)?)s?")
_STAFF = (r"(?:an?|the|one of our|our) (?:[\w-]+ )?(?:engineer|developer|admin(?:istrator)?|"
          r"technician|employee|colleague|staff member|team member|intern|operator)s?")

BLAME: dict[str, tuple[str, ...]] = {
    "the customer": (
        r"you (?:have |had )?(?:failed|neglected|forgot(?:ten)?) to|you were (?:supposed|meant) to",
        r"you (?:forgot|neglected|ignored|misconfigured|misused)",
        r"your (?:own |team's |side's |staff's |admin's )?(?:mistake|fault|error|oversight|"
        r"negligence)s?(?! (?:messages?|logs?|codes?|rates?|reports?|pages?)\b)",
        r"you (?:should|shouldn't|should not|ought to) have"
        r"(?! (?:already |now )?(?:received|got|gotten|been|seen)\b)",
        r"(?:due to|because of|caused by|owing to|as a result of) your"
        r"(?! (?:request|feedback|report|question|message|patience|email|call)s?\b)",
        r"because you(?! (?:asked|requested|wrote|reported|contacted|mentioned|told|let|raised|"
        r"called|are|were)\b)",
        r"you (?:didn't|did not|never)(?! (?:receiv\w*|get|got|see|saw|hear|heard|need\w*|"
        r"have to|had to)\b)",
        r"if (?:only )?you (?:had|hadn't)(?! (?:any|a|an|the|questions?|problems?|trouble|"
        r"issues?|time)\b)",
        r"(?:user|customer|client)(?:'s)? (?:error|mistake|fault)",
        r"(?:issue|problem|error|fault) (?:is|was|lies|lay) (?:on|with) your (?:end|side)",
    ),
    "a third party": (
        rf"(?:our |the |a |an )?{_WHO}(?:'s|')? (?:fault|error|mistake|failure|negligence)",
        rf"(?:our |the |a |an )?{_WHO} (?:caused|(?:is|was|are|were) (?:entirely |solely |partly )?"
        r"(?:to blame|responsible|at fault)|(?:failed|forgot|neglected) to|"
        r"made an? (?:mistake|error)|messed up|let us down)",
        rf"(?:because of|due to|caused by|owing to|blamed? on) (?:our |the |a |an )?{_WHO}",
        r"it (?:was|is|'s) (?:entirely |all |completely |solely )?"
        r"(?!(?:our|my|no ?one|nobody|anyone|anybody)\b)[\w.&-]+(?:'s|') fault",
        r"(?<!we )(?:is|are|was|were) (?:entirely |solely |partly )?to blame",
        r"blame (?:lies|lay|rests|rested) with(?! us\b| ourselves\b)",
        r"not our fault|(?:isn't|wasn't) our fault",
    ),
    "a person": (
        r"human error|operator error|the intern",
        rf"{_STAFF}(?:'s|')? (?:error|mistake|fault|oversight|negligence)",
        rf"{_STAFF} (?:forgot|neglected|overlooked|messed up|screwed up|failed to|"
        r"made an? (?:mistake|error)|(?:was|were) (?:careless|negligent))",
    ),
}
"""Blame, by whom it points at. First person plural ("we", "our deployment") never is."""

_CALENDAR = (r"January|February|March|April|May|June|July|August|September|October|November|"
             r"December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday")
NAMED_BLAME = (  # case-sensitive: the capital letter is what makes it a name
    r"(?<![\w'])(?!(?:We|You|It|This|That|Who|Which|What|There|Here)\b)[A-Z][a-z]+"
    r"(?: [A-Z][a-z]+)? (?i:forgot|neglected|overlooked|messed up|screwed up|"
    r"made an? (?:mistake|error)|was (?:careless|negligent))\b"
    r"|(?<![\w'])[A-Z][a-z]+'s (?i:mistake|fault|oversight)\b"
    rf"|(?i:caused by|fault of) (?!(?:{_CALENDAR}|The|Our|This|That|These|Those)\b)[A-Z][a-z]+\b"
    r"(?! [a-z]+ing\b)"  # "caused by Redis running out of memory" names a cause, not a person
)
"""Blame of someone by name: "Dave forgot", "John's mistake", "caused by Priya"."""

APOLOGY = r"sorry|apolog(?:y|ies|i[sz]e[sd]?|i[sz]ing)|(?:we|i) (?:deeply |sincerely )?regret"

PERSONAL = (
    r"i(?:'ll| will| shall|'m going to| am going to)(?: (?:personally|also|always|now|just))?"
    r"(?: [\w-]+)?",
    r"i (?:promise|guarantee|personally|myself|give you my word)", r"my (?:own )?work",
    r"i(?:'ll| will) (?:be more careful|double-check|make sure)",
)
"""Promises that rest on one person; a prevention answer must be a change to a process."""

ABSOLUTE = (
    r"never (?:ever )?again", r"never (?:happen|occur|recur)s? again",
    r"(?:won't|will not|shall not|cannot|can't|can never) (?:ever )?(?:happen|occur|recur) again",
    r"(?:this|it|that) will never", r"guarantee[ds]?|guaranteeing",
    r"ensure (?:that )?(?:this|it|that)(?: issue| problem| outage)? "
    r"(?:never|will never|won't|will not|can't|cannot)",
    r"100 ?% (?:sure|certain|reliable|guaranteed|safe|secure|available|uptime)",
)

VAGUE = (
    r"as soon as (?:possible|we can|we are able)", r"soon", r"asap|a\.s\.a\.p\.?", r"shortly",
    r"in due course", r"at some point", r"in the (?:near|coming) future",
    r"in the coming (?:hours|days|weeks)", r"in the next few (?:hours|days)",
    r"when(?:ever)? (?:we can|possible)", r"at the earliest (?:opportunity|convenience|possible)",
    r"as quickly as (?:possible|we can)", r"promptly", r"in a (?:bit|while|few days)",
    r"later (?:today|this week|on)", r"before long",
)

EMOTIONAL = (
    r"furious", r"ridiculous", r"outrageous", r"unacceptable", r"disaster(?:ous)?", r"terrible",
    r"horrible|horrendous|awful|appalling", r"devastat(?:ed|ing)", r"absurd|insane|stupid|pathetic",
    r"calm down", r"obviously", r"clearly you", r"frankly", r"needless to say",
    r"as (?:i|we) (?:already |have already )?(?:said|told you|explained)",
)

ACRONYMS: frozenset[str] = _DETECTION_ACRONYMS | frozenset({
    "EMEA", "APAC", "HIPAA", "JSON", "HTML", "SFTP", "REST", "OAUTH", "SAAS", "TODO", "QA", "IT",
})
"""Capitalised words that are names, not shouting (detection's list and a few more)."""

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
CONCRETE_TIME = (
    r"(?:[01]?\d|2[0-3]) ?(?::|h) ?[0-5]\d|(?:1[0-2]|0?[1-9])(?:[:.][0-5]\d)? ?[ap]\.?m\.?|"
    r"noon|midday|midnight|\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|"
    rf"\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?"
)
"""A clock time (14:30, 2 pm, 14 h 30) or a date (2026-03-04, 04.03.2026, 4 March, March 4th)."""
# fmt: on
