//! Service keys: the unit in which disruptions are found (DESIGN, "Classes and
//! services"). A flow's key is, in order of preference:
//!
//! 1. for a flow to a multicast group, the group;
//! 2. the registered domain (the public suffix and one label more, by Mozilla's Public
//!    Suffix List through the `psl` crate) of the name the flow itself carries: the TLS or
//!    QUIC SNI, else the HTTP Host;
//! 3. the registered domain of the name DNS gave for the server's address
//!    (`flows.server_name`);
//! 4. the server's prefix: IPv4 /24, IPv6 /48.
//!
//! A name the list does not cover (no known public suffix, an address written as a name)
//! is kept whole, lower-case, without a trailing dot.

use std::net::IpAddr;

/// Where a service key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceSource {
    /// The multicast group.
    Group,
    /// The TLS or QUIC server name (SNI).
    Sni,
    /// The HTTP Host header.
    HttpHost,
    /// The DNS name of the server's address.
    Dns,
    /// The server's address prefix.
    Prefix,
}

impl ServiceSource {
    /// The name used in tables: `group`, `sni`, `http_host`, `dns`, `prefix`.
    pub fn name(self) -> &'static str {
        match self {
            ServiceSource::Group => "group",
            ServiceSource::Sni => "sni",
            ServiceSource::HttpHost => "http_host",
            ServiceSource::Dns => "dns",
            ServiceSource::Prefix => "prefix",
        }
    }
}

/// The registered domain of `name` (see the [module documentation](self)).
pub fn registered_domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<IpAddr>().is_ok() {
        return name;
    }
    match psl::domain_str(&name) {
        Some(d) => d.to_owned(),
        None => name,
    }
}

/// The prefix key of an address: `a.b.c.0/24` or the first 48 bits of an IPv6 address
/// with `/48`.
pub fn prefix_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            format!("{x}.{y}.{z}.0/24")
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let p = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{p}/48")
        }
    }
}

/// A flow's service key and where it came from: `group` for a flow to a multicast group,
/// `sni` / `http_host` the names the flow carries, `server_name` the DNS name of its
/// server, `server` its server address.
pub fn service_key(
    group: Option<IpAddr>,
    sni: Option<&str>,
    http_host: Option<&str>,
    server_name: Option<&str>,
    server: IpAddr,
) -> (String, ServiceSource) {
    if let Some(g) = group {
        return (g.to_string(), ServiceSource::Group);
    }
    if let Some(n) = named(sni) {
        return (registered_domain(n), ServiceSource::Sni);
    }
    if let Some(n) = named(http_host) {
        return (registered_domain(n), ServiceSource::HttpHost);
    }
    if let Some(n) = named(server_name) {
        return (registered_domain(n), ServiceSource::Dns);
    }
    (prefix_key(server), ServiceSource::Prefix)
}

/// A name that is there and not blank.
fn named(n: Option<&str>) -> Option<&str> {
    n.map(str::trim).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_order_of_preference() {
        let server: IpAddr = "203.0.113.77".parse().unwrap();
        let group: IpAddr = "239.1.1.1".parse().unwrap();
        assert_eq!(
            service_key(Some(group), Some("a.example.com"), None, None, server),
            ("239.1.1.1".to_string(), ServiceSource::Group)
        );
        assert_eq!(
            service_key(
                None,
                Some("Edge-3.CDN.Example.co.uk."),
                Some("x.org"),
                None,
                server
            ),
            ("example.co.uk".to_string(), ServiceSource::Sni)
        );
        assert_eq!(
            service_key(
                None,
                None,
                Some("live.panel.example.org"),
                Some("y.net"),
                server
            ),
            ("example.org".to_string(), ServiceSource::HttpHost)
        );
        assert_eq!(
            service_key(
                None,
                Some(""),
                None,
                Some("r1.sn-abc.googlevideo.com"),
                server
            ),
            ("googlevideo.com".to_string(), ServiceSource::Dns)
        );
        assert_eq!(
            service_key(None, None, None, None, server),
            ("203.0.113.0/24".to_string(), ServiceSource::Prefix)
        );
        let v6: IpAddr = "2001:db8:100:7::10".parse().unwrap();
        assert_eq!(prefix_key(v6), "2001:db8:100::/48");
    }

    #[test]
    fn names_the_list_does_not_cover() {
        // Unknown top-level labels fall under the list's default rule ("*").
        assert_eq!(registered_domain("live.panel-a.example"), "panel-a.example");
        assert_eq!(registered_domain("10.0.0.1"), "10.0.0.1");
        assert_eq!(registered_domain("localhost"), "localhost");
    }
}
