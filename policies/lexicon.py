"""Phrase tables for the offline complaint scorer, kept apart from the scoring so they read as data.

Patterns are lower-case regular expressions written with their accents; the
scorer folds both the patterns and the text (accents removed, case folded,
``ß`` to ``ss``), so ``"réponse"`` also matches ``"reponse"``. Each pattern is
matched as a whole word or phrase. Synonyms share one entry on purpose: an
entry counts once per message however often it matches, so a long message does
not become "more of a complaint" by repeating itself.

Weights: about 3-4 for a phrase that is a complaint on its own ("charged me
twice", "not working"), 1.5-2.5 for strong evidence that needs company, about
1 for context. The complaint threshold is 3.0 (see :mod:`policies.detect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.model import Category, Severity

__all__ = ["PHRASES", "Kind", "Phrase"]


class Kind(StrEnum):
    COMPLAINT = "phrase"
    INTENSITY = "intensity"
    PRAISE = "praise"
    NEUTRAL = "neutral"
    MARKETING = "marketing"
    MACHINE = "machine text"


@dataclass(frozen=True)
class Phrase:
    """One entry of the lexicon.

    ``level`` is the severity this phrase justifies when the message is a
    complaint; ``negatable`` is False for phrases that carry their own negation
    ("not working"), so a "not" in front of them is not read as a denial;
    ``tag`` marks ``legal`` threats and ``scope`` words ("everyone", "all users").
    """

    pattern: str
    weight: float
    kind: Kind = Kind.COMPLAINT
    category: Category | None = None
    level: Severity | None = None
    negatable: bool = True
    tag: str = ""


# fmt: off
TECH, OUTAGE, PERF = Category.TECHNICAL_ISSUE, Category.SERVICE_OUTAGE, Category.PERFORMANCE
CONTRACT, BILLING = Category.CONTRACT_DISPUTE, Category.BILLING
COMMS, COMPLIANCE = Category.COMMUNICATION_BREAKDOWN, Category.COMPLIANCE
STRATEGY, EMERGENCY = Category.STRATEGIC_SHIFT, Category.EMERGENCY
HIGH, CRITICAL = Severity.HIGH, Severity.CRITICAL


def _c(category: Category | None, weight: float, pattern: str, level: Severity | None = None,
       *, negatable: bool = True, tag: str = "") -> Phrase:
    return Phrase(pattern, weight, Kind.COMPLAINT, category, level, negatable, tag)
# fmt: on


def _k(kind: Kind, weight: float, pattern: str) -> Phrase:
    # Only praise can be denied ("not great service"); a bounce stays a bounce.
    return Phrase(pattern, weight, kind, negatable=kind is Kind.PRAISE)


_NOT = r"(?:not|never|no longer|cannot|\w+n't|(?:is|are|was|were|does|do|did|wo|ca|has|have)nt)"
"""A negation inside a pattern (such patterns are marked ``negatable=False``)."""
_CANT = (
    r"(?:can'?t|cannot|can not|could ?n'?t|could not|unable to|not able to|wo ?n'?t|will not|"
    r"does ?n'?t|does not|did ?n'?t|did not|(?:nobody|no one|none of us) can|still can'?t)"
)
_ACT = (
    r"log ?in|login|sign ?in|access|open|save|upload|download|connect|submit|complete|"
    r"make (?:a )?payments?|pay|reset|load|start|sync|print|install|send|receive"
)

# fmt: off
_ENGLISH: tuple[Phrase, ...] = (
    # technical_issue
    _c(TECH, 3.0, rf"{_NOT} (?:\w+ )?work(?:ing|s)?|stopped working|quit working|"
       r"fails? to work", HIGH, negatable=False),
    _c(TECH, 3.0, rf"{_CANT} (?:\w+ )?(?:{_ACT})", HIGH, negatable=False),
    _c(TECH, 2.5, r"(?:get|getting|got|keep getting|receive|receiving|see|seeing|shows?|showing|"
       r"throws?|throwing|returns?|returning) (?:an? |the |this |that )?(?:\w+ )?(?:error|"
       r"exception|crash|blank page|white screen)"),
    _c(TECH, 1.5, r"errors?|exceptions?|error code"),
    _c(TECH, 3.0, r"nothing (?:works|is working|loads)|everything is broken", HIGH,
       negatable=False),
    _c(TECH, 3.0, r"crash(?:es|ed|ing)?|freez(?:es|ing)|froze|frozen|keeps hanging", HIGH),
    _c(TECH, 3.0, r"broken|buggy|bugs?|glitch(?:es|y)?|malfunction(?:s|ing)?|corrupt(?:ed)?|"
       r"defective|faulty"),
    _c(TECH, 2.0, r"fails to (?:load|open|start|sync|save)|keeps? (?:failing|crashing|"
       r"logging me out)"),
    _c(TECH, 1.5, r"(?:a|the|this|an) (?:problem|issue)s?|problems? with|issues? with|"
       r"(?:has|have|having) (?:a |an )?(?:problem|issue|trouble)s?"),
    _c(TECH, 2.0, rf"(?:still|{_NOT}) (?:yet |been )?(?:fixed|resolved|solved)|no fix|"
       r"nothing (?:was|has been) (?:done|fixed)", negatable=False),
    # service_outage
    _c(OUTAGE, 3.0, r"(?:is|are|was|were|went|goes|been|being|it'?s|still|completely|totally) "
       r"down(?! payment)|down (?:again|since|for (?:hours|days|\d+))|(?:site|server|service|"
       r"system|app|api|website|platform|portal|everything|network|email|e-mail) "
       r"(?:\w+ ){0,2}down(?! payment)", HIGH),
    _c(OUTAGE, 3.5, r"outages?|service (?:disruption|interruption)|blackout", HIGH),
    _c(OUTAGE, 2.5, r"offline|unreachable|unavailable|inaccessible|bad gateway|"
       r"gateway time-?out|service unavailable|50[234]", HIGH),
    _c(OUTAGE, 2.0, r"not (?:available|accessible|reachable)|no (?:service|connection|"
       r"connectivity|internet|signal)|lost connection", negatable=False),
    # performance
    _c(PERF, 3.0, r"(?:very|extremely|really|so|incredibly|painfully|unbearably|too) slow|"
       r"sluggish|laggy|lagging|unresponsive", HIGH),
    _c(PERF, 2.5, r"slow(?:ness| down| to load| response)|takes (?:forever|ages|minutes)|"
       r"loading forever"),
    _c(PERF, 1.5, r"slow|lag|latency|timeouts?|timed? out|time-outs?"),
    _c(PERF, 2.0, r"performance (?:issues?|problems?|degradation)|degraded|keeps? "
       r"(?:timing out|disconnecting|dropping)"),
    # contract_dispute
    _c(CONTRACT, 3.5, r"breach(?:ed)? (?:of )?(?:the |our )?(?:contract|agreement|sla)|"
       r"(?:you|they) (?:have )?(?:breached|broke|broken|violated) (?:it|the|our|your|this)|"
       r"violat(?:e|ed|es|ing|ion of) (?:the |our )?(?:contract|agreement|sla|terms)", HIGH),
    _c(CONTRACT, 1.0, r"(?:our|my|the) contract|service level agreement|sla|terms (?:of service|"
       r"and conditions)|early termination|termination fee|notice period|minimum term"),
    _c(CONTRACT, 2.5, r"(?:not|never) what (?:we|i) (?:agreed|signed|were promised|was promised)|"
       r"(?:you|they) promised|was promised|were promised|misrepresent(?:ed|ation)?|"
       r"misled|misleading|false promises?|bait and switch", HIGH, negatable=False),
    _c(CONTRACT, 2.5, r"(?:auto-?renew(?:ed|al)?|renewed) without", HIGH, negatable=False),
    _c(CONTRACT, 3.0, r"(?:not|never|stopped) (?:honou?ring|meeting|respecting|delivering on) "
       r"(?:the |our |your |its )?(?:sla|contract|agreement|commitments?|guarantees?|obligations?)|"
       r"(?:sla|guarantee|commitment)s? (?:ha(?:s|ve) )?(?:not been|been|was|were)? ?(?:missed|"
       r"broken)|service credits? (?:we are|we're|i am) (?:owed|entitled)|(?:owed|entitled to) "
       r"(?:service )?credits?|review (?:the|our) contract", HIGH, negatable=False),
    _c(CONTRACT, 2.5, r"(?:closed|froze|frozen|"
       r"suspended|terminated|restricted|locked|blocked) (?:my|our) (?:account|card)s?|"
       r"(?:placed|put) (?:a |an )?(?:\w+ )?hold on (?:my|our)", HIGH),
    # billing
    _c(BILLING, 4.0, r"charged (?:me |us )?(?:twice|two times|double|three times)|"
       r"double[- ]?(?:charged|billed|charge|billing)|(?:over|incorrectly |wrongly )"
       r"(?:charged|billed)|overcharg(?:e|es|ing)|billed twice|charged (?:me |us )?(?:again|"
       r"for something)", HIGH),
    _c(BILLING, 3.5, r"(?:unauthori[sz]ed|fraudulent|unknown|unrecogni[sz]ed|duplicate|"
       r"incorrect|wrong|hidden|unexpected|excessive|bogus) (?:charges?|transactions?|"
       r"payments?|debits?|fees?|withdrawals?|amount|invoice|bill)", HIGH),
    _c(BILLING, 3.0, r"(?:want|need|demand|request|requested|still waiting for|where is) "
       r"(?:a |my |our |the )?(?:full )?(?:refund|money back|reimbursement|chargeback)|"
       rf"{_NOT} (?:yet )?(?:received|gotten|got|been given|issued) (?:a |my |our |the |"
       r"any )?(?:refund|credit|reimbursement)|no refund", HIGH, negatable=False),
    _c(BILLING, 2.0, r"refunds?|reimburse(?:ment)?|chargeback|dispute (?:the|this|a) "
       r"(?:charge|transaction)|money back"),
    _c(BILLING, 2.0, r"(?:credit (?:line|limit)|apr|interest rate|rates?|fees?|prices?|premium) "
       r"(?:was |were |has been |have been )?(?:decreased|increased|raised|lowered|reduced|cut|"
       r"doubled)"),
    _c(BILLING, 2.0, r"charged (?:me |us )?(?:a |an )?(?:\w+ )?(?:fee|interest|penalty)|"
       r"(?:interest|fees?|charges?|rates?|payments?|price|bill) (?:is|are|was|were) (?:too|"
       r"way too|extremely|very) (?:high|much|expensive)"),
    _c(BILLING, 1.0, r"charged|charges?|fees?|late fees?|interest|billing|billed|invoiced?|"
       r"debited|withdrawn|overdraft|balance|statement"),
    _c(BILLING, 0.5, r"payments?|credit card|debit card|bank account|loan|mortgage|debt"),
    # communication_breakdown
    _c(COMMS, 3.0, r"(?:no|never (?:got|received|had) an?y?) (?:response|reply|answer|"
       rf"call ?back|follow[- ]?up|feedback|assistance|help)|{_NOT} (?:yet )?(?:heard back|"
       r"responded|replied|answered|called (?:me )?back|gotten back|got back|been contacted|"
       r"followed up|(?:been )?(?:informed|notified)|received (?:a |any )?(?:response|reply|"
       r"answer))|"
       r"(?:have|has) yet to (?:receive|hear|get)|(?:not getting|never got|can'?t get|cannot get) "
       r"(?:a |an |any )?(?:\w+ )?(?:answer|response|reply|help)|(?:nobody|no one|no-one) "
       r"(?:has )?(?:responded|replied|answered|called|got back|gets back|helped|cares|listens)",
       HIGH, negatable=False),
    _c(COMMS, 2.5, r"ignor(?:ed|ing|es)|(?:still|been|keep) waiting|run ?around|run-around|"
       r"passed (?:around|from one)|transferred (?:me )?(?:\w+ )?(?:times|again|around)|"
       r"hung up|put (?:me )?on hold|stonewall(?:ed|ing)"),
    _c(COMMS, 2.0, r"(?:multiple|several|many|numerous|countless|repeated) (?:times|calls|"
       r"emails|e-mails|attempts|requests|letters)|repeatedly|(?:called|emailed|contacted|"
       r"written|wrote|asked) (?:\w+ ){0,3}(?:times|again)"),
    _c(COMMS, 2.5, r"without (?:any |prior )?(?:notice|notification|warning|explanation|"
       r"telling|informing|consulting|asking)|(?:failed|refused|refuses|fail) to (?:respond|"
       r"reply|notify|inform|explain|provide|answer|investigate|correct|send)",
       HIGH, negatable=False),
    _c(COMMS, 1.0, r"customer (?:service|support|care)|your (?:agents?|representatives?)"),
    # compliance
    _c(COMPLIANCE, 3.5, r"identity theft|fraud(?:ulent(?:ly)?|ster)?|scam(?:med)?|"
       r"stolen identity|victim of", HIGH),
    _c(COMPLIANCE, 3.5, rf"(?:{_NOT}) mine|(?:do|did) ?(?:not|n'?t) (?:authori[sz]e|open|apply|"
       r"make|initiate|recogni[sz]e|consent|give permission)|never (?:authori[sz]ed|opened|"
       r"applied|made|initiated|consented|requested|signed (?:up )?for)|without (?:my|any) "
       r"(?:\w+ )?(?:consent|permission|knowledge|authori[sz]ation)|no (?:affiliation|relation|"
       r"connection|association) with|(?:does|do) not belong "
       r"to me|not (?:associated|affiliated) with me", HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"violat(?:e|ed|es|ing|ions?)|illegal(?:ly)?|unlawful(?:ly)?|"
       r"in breach of (?:the )?(?:law|gdpr|regulations?)|non-?compliant", HIGH),
    _c(COMPLIANCE, 3.0, r"inaccurate|incorrect information|erroneous|(?:wrong|false|incorrect|"
       r"invalid|unverified|obsolete|outdated) (?:information|items?|accounts?|entr(?:y|ies)|"
       r"data|inquir(?:y|ies)|reporting|late payments?)", HIGH),
    _c(COMPLIANCE, 2.5, r"fcra|fair credit reporting act|fdcpa|15 u\.? ?s\.? ?c|section 6\d\d|"
       r"consumer protection|privacy (?:breach|violation)|regulators?|ombudsman|cfpb|ftc|"
       r"attorney general|report (?:you|this) to"),
    _c(COMPLIANCE, 1.5, r"gdpr|data protection|hipaa|right to (?:erasure|be forgotten)"),
    _c(COMPLIANCE, 2.0, r"credit reports?|credit files?|credit bureaus?|(?:my|consumer) "
       r"(?:credit )?(?:report|file)s?|hard inquir(?:y|ies)|inquir(?:y|ies)|reinsert(?:ed|ion)?|"
       r"bureaus?|derogatory|investigation"),
    _c(COMPLIANCE, 2.5, rf"{_NOT} (?:yet )?(?:been )?(?:removed|deleted|corrected|updated)|"
       r"still (?:listed|reporting|showing|appearing)|keeps? (?:appearing|reporting|showing up)|"
       r"continues? to (?:report|appear|show)|(?:reporting|reported) me as late|never (?:been )?"
       r"late|(?:always|never missed|made all) (?:\w+ ){0,2}(?:payments?|paid) (?:on time|timely)|"
       r"timely payments|(?:affecting|hurting|harming|damag(?:ing|ed)|lowered|dropped) my "
       r"(?:credit|scores?)", HIGH, negatable=False),
    _c(COMPLIANCE, 2.0, r"(?:want|like|need|needs|request) (?:\w+ ){0,3}(?:to be )?(?:removed|"
       r"deleted|corrected)|please (?:remove|delete|correct)"),
    _c(COMPLIANCE, 2.0, r"disput(?:e|ed|es|ing)"),
    _c(COMPLIANCE, 1.0, r"personal (?:data|information)"),
    _c(COMPLIANCE, 2.5, r"(?:remove|removed|delete|deleted|removal of) (?:\w+ ){0,4}from "
       r"(?:my|the|your) (?:credit )?(?:report|file|record)s?"),
    _c(COMPLIANCE, 3.0, r"lawyers?|attorneys?|legal action|legal steps|lawsuit|sue (?:you|your)|"
       r"take (?:you|this) to court|small claims|class action|litigation", HIGH, tag="legal"),
    # strategic_shift
    _c(STRATEGY, 3.0, r"(?:switch|switching|move|moving|go|going) to (?:a |another )?"
       r"(?:competitor|different (?:provider|vendor|supplier)|another (?:provider|vendor|"
       r"supplier))|take (?:our|my) business elsewhere|looking (?:for|at) alternatives|"
       r"reconsider(?:ing)? (?:our|the) (?:partnership|relationship|contract|subscription)|"
       r"(?:will|shall|going to) (?:not|never) renew|(?:won'?t|not going to) renew",
       HIGH, negatable=False),
    _c(STRATEGY, 2.0, r"(?:cancel|cancell?ing|close|closing) (?:my|our) (?:account|subscription|"
       r"membership|contract)"),
    _c(STRATEGY, 2.0, r"(?:you|they) (?:have )?(?:discontinued|removed|dropped|deprecated|"
       r"changed|raised|increased)|price (?:increase|hike)|(?:new|changed) (?:pricing|policy|"
       r"terms)", HIGH),
    # emergency
    _c(EMERGENCY, 4.0, r"emergenc(?:y|ies)|production (?:is |system is |systems are )?"
       r"(?:down|broken|halted|stopped|offline)|data loss|lost (?:all )?(?:our|my|the) data|"
       r"data (?:was|has been|is) (?:lost|deleted|wiped)|security (?:breach|incident)|"
       r"(?:we|i|account|accounts|server|servers) (?:was |were |have been |has been )?(?:hacked|"
       r"compromised)|data breach|life[- ]threatening|patient safety", CRITICAL),
    _c(EMERGENCY, 1.5, r"urgent(?:ly)?|asap|immediately|critical|right now|as soon as possible"),
    _c(EMERGENCY, 2.5, r"losing (?:money|revenue|customers|sales)|(?:can'?t|cannot|unable to) "
       r"(?:process|take|accept) (?:any )?(?:orders|payments|sales)|business (?:is )?(?:at a )?"
       r"(?:standstill|stopped)", HIGH, negatable=False),
    # general dissatisfaction: no category of its own
    _c(None, 3.0, r"(?:formal|official) complaint|file (?:a )?complaint|complain(?:t|ts|ing|ed)? "
       r"(?:about|regarding|to)|escalat(?:e|ing) (?:this|to)"),
    _c(None, 2.0, r"complaints?|complain(?:ing|ed)?|dissatisfied|unhappy|not (?:happy|satisfied|"
       r"pleased|fair|ok|okay|acceptable)|disappoint(?:ed|ing|ment)|frustrat(?:ed|ing|ion)|angry|upset|annoyed|"
       r"(?:poor|bad|terrible|awful|horrible|lousy|abysmal) (?:service|support|experience|"
       r"quality|communication|customer service)", negatable=False),
    _c(None, 2.0, r"rip-?off|predatory|(?:they|he|she|you) lied|lying|dishonest|deceptive|"
       r"unfair(?:ly)?|unjust|screw(?:ed|ing) (?:up|me|us)|(?:your|their|a) mistake|"
       r"by mistake|mistakenly|(?:financial|emotional) (?:hardship|harm|distress)|causing (?:me |"
       r"us )?(?:\w+ )?(?:harm|distress|hardship|damage)|denial of|denied (?:my|me|the|our)"),
    _c(None, 1.0, r"for (?:everyone|everybody|all (?:of )?(?:us|our|my))|all (?:of )?(?:our |my )?"
       r"(?:users|customers|clients|employees|staff|stores|sites|locations)|entire (?:company|"
       r"team|organi[sz]ation|office|site|platform|system)|company[- ]wide|nobody can|"
       r"no one can|none of (?:us|our)", negatable=False, tag="scope"),
    # intensity: how strongly, not what about
    _k(Kind.INTENSITY, 1.5, r"unacceptable|ridiculous|absurd|outrageous|disgrac(?:e|eful)|"
       r"appall(?:ed|ing)|shameful|pathetic|incompetent|incompetence|worst|useless"),
    _k(Kind.INTENSITY, 1.5, r"furious|livid|disgusted|outraged|fed up|sick (?:and tired )?of|"
       r"had enough|enough is enough|last straw|thanks for nothing"),
    _k(Kind.INTENSITY, 1.5, r"(?:second|third|fourth|fifth|tenth|\d+(?:nd|rd|th)) time|"
       r"(?:yet|once) again|again and again|over and over|every (?:single )?time|"
       rf"how many (?:more )?times|still(?= (?:{_NOT}|nothing|waiting|no))|keeps? (?:getting|"
       r"happening|coming back|recurring)|"
       r"for (?:weeks|months)"),
    # things that make a message *less* likely to be a complaint
    _k(Kind.PRAISE, -1.0, r"thanks?(?! for nothing)(?: you)?(?: so much| very much| a lot)?|thx|"
       r"many thanks|appreciated?"),
    _k(Kind.PRAISE, -2.5, r"(?:great|good|excellent|fantastic|amazing|awesome|wonderful|"
       r"outstanding) (?:job|work|service|support|product|team|experience)|well done|"
       r"love (?:it|your|the)|works? (?:great|perfectly|fine|well|again)|working again|"
       r"(?:is|are) (?:now )?(?:back up|back online)|(?:is|are) now (?:resolved|fixed|working)|"
       r"(?:has|have) (?:now )?been (?:resolved|fixed)(?! yet)|"
       r"(?:very|really|so) (?:happy|pleased|satisfied)|keep up the good work|kudos"),
    _k(Kind.NEUTRAL, -2.5, r"(?:planned|scheduled|routine|upcoming) maintenance|maintenance "
       r"(?:window|on|this|next)|for maintenance"),
    _k(Kind.NEUTRAL, -1.5, r"how (?:do|can|should|would) (?:i|we|you)|how to|is it possible|"
       r"is there a way|could you (?:tell|explain|advise)|i(?:'d| would) like to know|"
       r"quick question|just wondering|feature request|suggestion"),
    _k(Kind.MARKETING, -3.0, r"unsubscribe|view (?:this email |it )?in (?:your |a )?browser|"
       r"newsletter|special offer|limited[- ]time offer|promo(?:tion(?:al)?)? code|\d+ ?% off|"
       r"webinar|sign up (?:now|today)|you are receiving this (?:email|message)|"
       r"manage (?:your )?(?:email )?preferences"),
    # bounce, delay, abuse-report and out-of-office wording: a machine wrote this
    _k(Kind.MACHINE, -4.0, r"out of (?:the )?office|automatic reply|auto-?reply|i am "
       r"(?:currently )?(?:away|out of (?:the )?office)|i(?:'m| am) on (?:vacation|holiday|"
       r"leave)|limited access to (?:my )?e-?mail|(?:upon|after|when) my return"),
    _k(Kind.MACHINE, -4.0, r"(?:could|can) ?not be (?:delivered|sent)|cannot be delivered|"
       r"undeliver(?:able|ed)|non-deliverable|(?:was ?n'?t|was not|not) delivered|delivery "
       r"(?:has failed|to the following recipients? (?:has )?failed|status notification)|"
       r"unable to deliver|failed to deliver|mail delivery (?:failed|subsystem|system)|"
       r"returned mail|message delayed|delayed mail|could not send (?:mail|message) for|"
       r"still undelivered|will keep trying|(?:still being|will be) retried"),
    _k(Kind.MACHINE, -4.0, r"this is the mail system|i'm sorry to have to inform you|include this "
       r"problem report|delete your own text|transcript of (?:the )?(?:session|attempts)|"
       r"(?:the )?original message (?:was received|follows)|this is a copy of your message|"
       r"error details|diagnostic information for administrators|generating server|warning "
       r"message only|do not need to resend|the following address(?:es)? (?:had|failed)|"
       r"permanent(?: fatal)? errors?|over quota|quota exceeded|user unknown|no such (?:user|"
       r"mailbox|recipient)|mailbox (?:unavailable|full|not found|is full|does not exist)|"
       r"recipient address rejected|malformed (?:recipient )?address|host (?:not found|unknown)"),
    _k(Kind.MACHINE, -4.0, r"diagnostic-code|final-recipient|original-recipient|reporting-mta|"
       r"remote-mta|action: (?:failed|delayed)|status: [45]\.\d|[45]\d\d[ -][45]\.\d\.\d+|"
       r"rcpt to|mail from|smtp (?:error|server|session)|remote (?:host|server) (?:said|returned)|"
       r"esmtp|this is an automatically generated|do not reply to this|notificationtype|"
       r"aws notification message|mime-version|content-transfer-encoding"),
    _k(Kind.MACHINE, -4.0, r"complaint about message from|abuse report|feedback-type|spam ?trap|"
       r"unsolicited bulk e-?mail|considered (?:as )?spam|virus (?:found|detected)|content filter"),
)

_INTERNATIONAL: tuple[Phrase, ...] = (
    # German
    _c(TECH, 3.0, r"funktioniert (?:\w+ )?(?:nicht|nie|kaum)|geht (?:\w+ )?nicht|klappt nicht|"
       r"kann (?:mich )?(?:\w+ )?nicht (?:anmelden|einloggen|zugreifen|speichern|bezahlen)|"
       r"stürzt (?:\w+ )?ab|hängt sich auf|bleibt hängen", HIGH, negatable=False),
    _c(TECH, 2.5, r"fehler(?:meldung|haft)?|kaputt|defekt|absturz|abgestürzt|probleme? mit"),
    _c(OUTAGE, 3.5, r"ausfall|ausgefallen|ist down|störung", HIGH),
    _c(OUTAGE, 3.0, r"nicht (?:mehr )?(?:erreichbar|verfügbar)", HIGH, negatable=False),
    _c(PERF, 2.5, r"(?:sehr |extrem |viel zu )?langsam|dauert ewig|zeitüberschreitung"),
    _c(CONTRACT, 3.5, r"vertragsbruch|vertragsverletzung", HIGH),
    _c(CONTRACT, 2.5, r"nicht wie vereinbart|anders als vereinbart|(?:wurde|war) (?:uns |mir )?"
       r"(?:zugesagt|versprochen)", HIGH, negatable=False),
    _c(CONTRACT, 1.0, r"vertrag|kündigung(?:sfrist)?"),
    _c(BILLING, 4.0, r"doppelt (?:abgebucht|berechnet|belastet)|zu viel (?:berechnet|abgebucht)|"
       r"falsch (?:berechnet|abgerechnet)|falsche rechnung|unberechtigte (?:abbuchung|"
       r"belastung)", HIGH),
    _c(BILLING, 2.0, r"r(?:ü|ue)ckerstattung|geld zur(?:ü|ue)ck"),
    _c(BILLING, 1.0, r"rechnung|abbuchung|gebühr(?:en)?|lastschrift"),
    _c(COMMS, 3.0, r"keine (?:antwort|rückmeldung|reaktion)|niemand (?:meldet sich|antwortet|"
       r"hilft)|warte (?:\w+ )?(?:immer noch|seit)|(?:wurde|werde|werden) ignoriert",
       HIGH, negatable=False),
    _c(COMMS, 2.0, r"mehrfach|mehrmals|wiederholt"),
    _c(COMPLIANCE, 3.0, r"datenschutz(?:verstoß|verletzung)|verstoß gegen (?:die )?dsgvo|"
       r"rechtswidrig|illegal|betrug", HIGH),
    _c(COMPLIANCE, 1.0, r"datenschutz|dsgvo|personenbezogene daten"),
    _c(COMPLIANCE, 3.0, r"ohne (?:meine )?(?:zustimmung|einwilligung)", HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"anwalt|rechtsanwalt|rechtliche schritte|klage|verbraucherzentrale",
       HIGH, tag="legal"),
    _c(STRATEGY, 3.0, r"anbieter wechseln|zur konkurrenz|preiserhöhung|(?:konto|abo|vertrag) "
       r"kündigen", HIGH),
    _c(EMERGENCY, 4.0, r"notfall|datenverlust|daten (?:sind )?(?:weg|verloren|gelöscht)|"
       r"gehackt|sicherheitslücke|produktion steht", CRITICAL),
    _c(EMERGENCY, 1.5, r"dringend|sofort|umgehend"),
    _c(None, 2.0, r"beschwerde|reklamation|unzufrieden|enttäuscht|verärgert", negatable=False),
    _k(Kind.INTENSITY, 1.5, r"inakzeptabel|unverschämt|frechheit|unglaublich|zum (?:zweiten|"
       r"dritten|vierten) mal|schon wieder|immer noch(?= nicht| kein)"),
    _k(Kind.PRAISE, -1.5, r"danke|vielen dank|funktioniert wieder|super arbeit"),
    # French
    _c(TECH, 3.0, r"ne (?:fonctionne|marche)|impossible de (?:me connecter|se connecter|payer|"
       r"enregistrer)|impossible d'(?:acceder|ouvrir)|plant(?:e|é)", HIGH, negatable=False),
    _c(TECH, 2.5, r"erreurs?|bogue|problèmes? (?:avec|de)|défaillance"),
    _c(OUTAGE, 3.5, r"en panne|panne|hors service|indisponible|coupure", HIGH),
    _c(PERF, 2.5, r"(?:très |trop )?lent(?:e|eur)?|prend une éternité"),
    _c(CONTRACT, 3.5, r"rupture de contrat|non[- ]respect du contrat", HIGH),
    _c(CONTRACT, 1.0, r"contrat|résiliation|résilier"),
    _c(BILLING, 4.0, r"factur(?:é|e)(?:e|s)? deux fois|prélevé deux fois|double (?:prélèvement|"
       r"facturation)|surfactur(?:ation|é)|trop (?:facturé|prélevé)", HIGH),
    _c(BILLING, 2.0, r"remboursement|rembourser"),
    _c(BILLING, 1.0, r"facture|prélèvement|frais"),
    _c(COMMS, 3.0, r"aucune réponse|pas de réponse|sans réponse|personne ne (?:répond|rappelle)|"
       r"toujours en attente|j'attends toujours|relancé|plusieurs (?:fois|relances)",
       HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"illégal|fraude|violation du rgpd", HIGH),
    _c(COMPLIANCE, 1.0, r"rgpd|protection des données|données personnelles|cnil"),
    _c(COMPLIANCE, 3.0, r"sans mon (?:accord|consentement)", HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"avocat|poursuites?|action en justice|mise en demeure|tribunal",
       HIGH, tag="legal"),
    _c(STRATEGY, 3.0, r"changer de (?:fournisseur|prestataire)|chez un concurrent|augmentation "
       r"(?:de|des) prix", HIGH),
    _c(EMERGENCY, 4.0, r"urgence|perte de données|piraté|faille de sécurité|production "
       r"(?:est )?(?:arrêtée|bloquée)", CRITICAL),
    _c(EMERGENCY, 1.5, r"immédiatement"),
    _c(None, 2.0, r"réclamation|plainte|mécontente?|insatisfaite?|déçue?", negatable=False),
    _k(Kind.INTENSITY, 1.5, r"inacceptable|scandaleux|inadmissible|honteux|ridicule|"
       r"toujours(?= pas)|encore une fois|pour la (?:deuxième|troisième) fois"),
    _k(Kind.PRAISE, -1.5, r"merci(?: beaucoup)?|fonctionne à nouveau|excellent service"),
    # Spanish
    _c(TECH, 3.0, r"no funciona|ya no funciona|dejó de funcionar|no puedo (?:iniciar sesión|"
       r"acceder|entrar|pagar|guardar)|se (?:cuelga|bloquea|cierra)", HIGH, negatable=False),
    _c(TECH, 2.5, r"errores|fallos?|falla|problemas? con|avería"),
    _c(OUTAGE, 3.5, r"caíd[oa]|caída del servicio|fuera de servicio|interrupción", HIGH),
    _c(OUTAGE, 3.0, r"sin servicio|no (?:está )?disponible", HIGH, negatable=False),
    _c(PERF, 2.5, r"(?:muy |demasiado )?lent(?:o|a|itud)|tarda (?:mucho|una eternidad)"),
    _c(CONTRACT, 3.0, r"incumplimiento(?: (?:de|del) contrato)?", HIGH),
    _c(CONTRACT, 2.5, r"no es lo (?:acordado|prometido)", HIGH, negatable=False),
    _c(CONTRACT, 1.0, r"contrato|rescindir"),
    _c(BILLING, 4.0, r"cobrad[oa]s? dos veces|cobraron (?:\w+ ){0,2}dos veces|cobro doble|"
       r"doble cobro|cobro (?:indebido|duplicado)|cobraron de más|cargos? indebidos?", HIGH),
    _c(BILLING, 3.5, r"cargos? no autorizados?", HIGH, negatable=False),
    _c(BILLING, 2.0, r"reembolso|devolución"),
    _c(BILLING, 1.0, r"factura|cobros?|comisión"),
    _c(COMMS, 3.0, r"sin respuesta|ninguna respuesta|nadie (?:responde|contesta|me ayuda)|"
       r"sigo esperando|me ignoran|varias veces", HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"ilegal|fraude|violación de (?:mis|los) datos", HIGH),
    _c(COMPLIANCE, 1.0, r"protección de datos|datos personales"),
    _c(COMPLIANCE, 3.0, r"sin mi (?:consentimiento|autorización)", HIGH, negatable=False),
    _c(COMPLIANCE, 3.0, r"abogados?|acciones legales|demanda judicial|denuncia", HIGH,
       tag="legal"),
    _c(STRATEGY, 3.0, r"cambiar de proveedor|a la competencia|aumento de precio", HIGH),
    _c(EMERGENCY, 4.0, r"emergencia|pérdida de datos|hackead[oa]|brecha de seguridad|"
       r"producción (?:está )?(?:caída|detenida)", CRITICAL),
    _c(EMERGENCY, 1.5, r"urgente|inmediatamente"),
    _c(None, 2.0, r"queja|reclamación|insatisfech[oa]|decepcionad[oa]|molest[oa]",
       negatable=False),
    _k(Kind.INTENSITY, 1.5, r"inaceptable|indignante|vergonzoso|ridículo|una vez más|otra vez|"
       r"todavía(?= no)|por (?:segunda|tercera) vez"),
    _k(Kind.PRAISE, -1.5, r"gracias|muchas gracias|funciona de nuevo"),
)

# fmt: on

PHRASES: tuple[Phrase, ...] = _ENGLISH + _INTERNATIONAL
