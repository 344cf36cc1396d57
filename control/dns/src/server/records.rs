//! The reply to one question, from a zone: which response code, which records in which
//! section (pure; the server wraps it in a message).

use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Answer, Zone};

/// TTL of address and NS records: short, because instances move between cloudlets.
pub const RECORD_TTL: u32 = 30;
/// The SOA's MINIMUM: how long resolvers cache "no such name" / "no such record" (RFC 2308).
pub const SOA_MINIMUM: u32 = 5;
/// SOA timers for secondaries (REFRESH, RETRY, EXPIRE), seconds.
const SOA_TIMERS: (i32, i32, i32) = (60, 30, 3600);

/// What to send back for one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: ResponseCode,
    /// Set on every answer from the zone (not on errors about the request itself or on
    /// REFUSED, which says the name is not ours).
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Reply {
    /// A reply with only a code.
    pub fn error(code: ResponseCode) -> Self {
        Self {
            code,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }

    fn authoritative(code: ResponseCode) -> Self {
        Self {
            authoritative: true,
            ..Self::error(code)
        }
    }
}

/// The reply to `qname`/`qtype` from `zone`: addresses for names that have them, NOERROR with
/// the SOA in the authority section for names without the type asked for, NXDOMAIN with the SOA
/// for names under the zone that do not exist, REFUSED outside it; SOA and NS at the apex.
pub fn reply(zone: &Zone, qname: &Name, qtype: RecordType) -> Reply {
    match build(zone, qname, qtype) {
        Ok(r) => r,
        Err(error) => {
            // Zone names are validated when the zone is built, so this is a bug, not input.
            tracing::error!(%error, zone = zone.origin(), "cannot encode the zone's records");
            Reply::error(ResponseCode::ServFail)
        }
    }
}

fn build(zone: &Zone, qname: &Name, qtype: RecordType) -> Result<Reply, String> {
    let asked = qname.to_ascii();
    let addrs = match zone.lookup(&asked) {
        Answer::Refused => return Ok(Reply::error(ResponseCode::Refused)),
        Answer::NxDomain => {
            let mut r = Reply::authoritative(ResponseCode::NXDomain);
            r.authority.push(soa(zone)?);
            return Ok(r);
        }
        Answer::NoData => Vec::new(),
        Answer::Addresses(a) => a,
    };
    let apex = is_apex(zone, &asked);
    let mut r = Reply::authoritative(ResponseCode::NoError);
    let wants = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    for addr in addrs.iter().filter(|a| match a {
        IpAddr::V4(_) => wants(RecordType::A),
        IpAddr::V6(_) => wants(RecordType::AAAA),
    }) {
        r.answers.push(address(qname.clone(), *addr));
    }
    if apex && wants(RecordType::SOA) {
        r.answers.push(soa(zone)?);
    }
    if apex && wants(RecordType::NS) {
        r.answers.push(Record::from_rdata(
            name(zone.origin())?,
            RECORD_TTL,
            RData::NS(NS(name(&zone.nameserver())?)),
        ));
        r.additionals = glue(zone)?;
    }
    if r.answers.is_empty() {
        r.authority.push(soa(zone)?);
    }
    Ok(r)
}

fn is_apex(zone: &Zone, asked: &str) -> bool {
    asked
        .strip_suffix('.')
        .unwrap_or(asked)
        .eq_ignore_ascii_case(zone.origin())
}

/// The zone's SOA record (its TTL is the negative-caching time too).
fn soa(zone: &Zone) -> Result<Record, String> {
    let (refresh, retry, expire) = SOA_TIMERS;
    let data = SOA::new(
        name(&zone.nameserver())?,
        name(&format!("hostmaster.{}", zone.origin()))?,
        zone.serial(),
        refresh,
        retry,
        expire,
        SOA_MINIMUM,
    );
    Ok(Record::from_rdata(
        name(zone.origin())?,
        SOA_MINIMUM,
        RData::SOA(data),
    ))
}

/// Addresses of the name server, for the additional section of an NS answer.
fn glue(zone: &Zone) -> Result<Vec<Record>, String> {
    let ns = zone.nameserver();
    let Answer::Addresses(addrs) = zone.lookup(&ns) else {
        return Ok(Vec::new());
    };
    let owner = name(&ns)?;
    Ok(addrs
        .into_iter()
        .map(|a| address(owner.clone(), a))
        .collect())
}

fn address(owner: Name, addr: IpAddr) -> Record {
    let data = match addr {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner, RECORD_TTL, data)
}

/// The fully qualified name of `text` (a zone name, without the trailing dot).
fn name(text: &str) -> Result<Name, String> {
    Name::from_ascii(format!("{text}.")).map_err(|e| format!("name {text:?}: {e}"))
}

#[cfg(test)]
mod tests;
