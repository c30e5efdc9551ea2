//! ConnMan's Agent API from the daemon's side (`net.connman.Agent.RequestInput`):
//! what an agent's answer dictionary gives for an [`InputRequest`]. Pure: the answer in,
//! an [`AgentAnswer`] out. Anything of the wrong type or size is refused with the reason,
//! so a confused or hostile agent cannot hand the supplicant garbage.

use std::collections::HashMap;

use zbus::zvariant::Value;

use crate::caps;
use crate::core::model::{AgentAnswer, InputRequest};
use crate::core::tech::wifi::Ssid;
use crate::core::types::Secret;
use crate::dbus::value::inner;

/// The agent's answer (`a{sv}`, keys as RequestInput asked) to `req`.
pub fn agent_answer(answer: &HashMap<&str, &Value<'_>>, req: &InputRequest) -> AgentAnswer {
    let passphrase = match answer.get("Passphrase").map(|v| inner(v)) {
        Some(Value::Str(s)) if s.len() <= caps::WIFI_MAX_SECRET_LEN => {
            Some(Secret(s.as_str().to_string()))
        }
        Some(Value::Str(s)) => {
            return AgentAnswer::Failed(format!(
                "the agent's passphrase has {} bytes, more than {} (caps::WIFI_MAX_SECRET_LEN)",
                s.len(),
                caps::WIFI_MAX_SECRET_LEN
            ))
        }
        Some(other) => {
            return AgentAnswer::Failed(format!(
                "the agent's Passphrase is {}, not a string",
                other.value_signature()
            ))
        }
        None => None,
    };
    if !req.ask_name {
        return match passphrase {
            Some(p) => AgentAnswer::Passphrase(p),
            None => AgentAnswer::Canceled("the agent gave no passphrase".into()),
        };
    }
    // A hidden network: Name (text), else SSID (bytes).
    let ssid = match (
        answer.get("Name").map(|v| inner(v)),
        answer.get("SSID").map(|v| inner(v)),
    ) {
        (Some(Value::Str(s)), _) => ssid_of(s.as_bytes(), "Name"),
        (None, Some(Value::Array(a))) => match bytes(a) {
            Some(b) => ssid_of(&b, "SSID"),
            None => Err("the agent's SSID is not an array of bytes".to_string()),
        },
        (Some(other), _) => Err(format!(
            "the agent's Name is {}, not a string",
            other.value_signature()
        )),
        (None, Some(other)) => Err(format!(
            "the agent's SSID is {}, not an array of bytes",
            other.value_signature()
        )),
        (None, None) => {
            return AgentAnswer::Canceled("the agent named no hidden network".into());
        }
    };
    match ssid {
        Ok(ssid) => AgentAnswer::Named { ssid, passphrase },
        Err(why) => AgentAnswer::Failed(why),
    }
}

fn ssid_of(bytes: &[u8], field: &str) -> Result<Ssid, String> {
    if bytes.is_empty() {
        return Err(format!("the agent's {field} is empty"));
    }
    Ssid::from_slice(bytes).map_err(|_| {
        format!(
            "the agent's {field} has {} bytes, more than {} (caps::WIFI_MAX_SSID_LEN)",
            bytes.len(),
            caps::WIFI_MAX_SSID_LEN
        )
    })
}

/// The bytes of an `ay` (none for an array of anything else).
fn bytes(a: &zbus::zvariant::Array<'_>) -> Option<Vec<u8>> {
    a.iter()
        .map(|x| match x {
            Value::U8(b) => Some(*b),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ask_name: bool, passphrase: bool) -> InputRequest {
        InputRequest {
            service: "wifi_020000000100_hidden_managed_psk".try_into().unwrap(),
            passphrase_type: passphrase.then_some("psk"),
            ask_name,
            previous: None,
        }
    }

    fn answer<'a>(pairs: &'a [(&'a str, Value<'a>)]) -> HashMap<&'a str, &'a Value<'a>> {
        pairs.iter().map(|(k, v)| (*k, v)).collect()
    }

    #[test]
    fn a_passphrase_answer() {
        let a = [("Passphrase", Value::from("correct horse"))];
        assert_eq!(
            agent_answer(&answer(&a), &req(false, true)),
            AgentAnswer::Passphrase(Secret("correct horse".into()))
        );
        assert!(matches!(
            agent_answer(&answer(&[]), &req(false, true)),
            AgentAnswer::Canceled(_)
        ));
        let long = "x".repeat(65);
        let a = [("Passphrase", Value::from(long.as_str()))];
        assert!(matches!(
            agent_answer(&answer(&a), &req(false, true)),
            AgentAnswer::Failed(_)
        ));
        let a = [("Passphrase", Value::U32(7))];
        assert!(matches!(
            agent_answer(&answer(&a), &req(false, true)),
            AgentAnswer::Failed(_)
        ));
    }

    #[test]
    fn a_hidden_network_is_named_by_name_or_ssid() {
        let a = [
            ("Name", Value::from("pm-hidden")),
            ("Passphrase", Value::from("correct horse")),
        ];
        assert_eq!(
            agent_answer(&answer(&a), &req(true, true)),
            AgentAnswer::Named {
                ssid: Ssid::from_slice(b"pm-hidden").unwrap(),
                passphrase: Some(Secret("correct horse".into())),
            }
        );
        let a = [("SSID", Value::from(vec![0xffu8, 0, 1]))];
        assert_eq!(
            agent_answer(&answer(&a), &req(true, false)),
            AgentAnswer::Named {
                ssid: Ssid::from_slice(&[0xff, 0, 1]).unwrap(),
                passphrase: None,
            }
        );
        assert!(matches!(
            agent_answer(&answer(&[]), &req(true, false)),
            AgentAnswer::Canceled(_)
        ));
        for bad in [
            [("Name", Value::from(""))],
            [("Name", Value::from("x".repeat(33).as_str().to_owned()))],
            [("Name", Value::U8(1))],
            [("SSID", Value::from("text"))],
            [("SSID", Value::from(vec![1u32, 2]))],
        ] {
            assert!(
                matches!(
                    agent_answer(&answer(&bad), &req(true, false)),
                    AgentAnswer::Failed(_)
                ),
                "{bad:?}"
            );
        }
    }
}
