//! The audit log's row of a manual change, written by the back office, the server's API and the
//! till's own enrolment in the change's own transaction ([`AUDIT_INSERT`](crate::loyalty::rows::AUDIT_INSERT), one statement for both
//! databases). Data only: each store runs the statement on its own connection.

use crate::domain::GuestId;
use crate::loyalty::rows::Val;

/// One manual change as the audit log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    /// What was done: `manual_credit`, `manual_debit`, `reset_holds`, `block`, `unblock`,
    /// `programme`, `group_add`, `group_edit`, `enrol`, `till_token_add`, `till_token_revoke`.
    pub action: String,
    pub guest_id: Option<GuestId>,
    /// What changed, phones and codes masked.
    pub detail: String,
    pub reason: String,
}

/// The parameters of [`AUDIT_INSERT`].
pub fn audit_params(org: &str, entry: &AuditEntry, op_key: Option<&str>) -> Vec<Val> {
    vec![
        Val::from(org),
        Val::Int(entry.at),
        Val::from(entry.actor.as_str()),
        Val::from(entry.action.as_str()),
        entry.guest_id.map_or(Val::Null, Val::Int),
        Val::from(entry.detail.as_str()),
        Val::from(entry.reason.as_str()),
        op_key.map_or(Val::Null, Val::from),
    ]
}

/// The audit row of an engine operation, written in the operation's own transaction: the change
/// is never kept without its row (nor the row without the change). Built from the operation's
/// answer, since some details are known only then (an enrolled guest's id, the holds a reset
/// released); a `Fn`, as a transaction PostgreSQL asks to retry runs again.
pub struct Audit {
    pub org: String,
    pub op_key: Option<String>,
    pub entry: Box<dyn Fn(&crate::loyalty::engine::Answer) -> AuditEntry + Send + Sync>,
}

impl Audit {
    /// A row that does not depend on the answer.
    pub fn fixed(org: &str, entry: AuditEntry, op_key: Option<String>) -> Audit {
        Audit {
            org: org.to_string(),
            op_key,
            entry: Box::new(move |_| entry.clone()),
        }
    }

    /// The parameters of [`AUDIT_INSERT`] for this answer.
    pub fn params(&self, answer: &crate::loyalty::engine::Answer) -> Vec<Val> {
        audit_params(&self.org, &(self.entry)(answer), self.op_key.as_deref())
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("org", &self.org).finish_non_exhaustive()
    }
}
