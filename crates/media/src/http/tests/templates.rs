//! Path templates, extensions, query names and roles: no credential leaves.

use proptest::prelude::*;

use super::*;

#[test]
fn templates() {
    let cases = [
        ("/", "/"),
        ("*", "*"),
        ("/index.html", "/index.html"),
        ("/seg/segment_00012.ts", "/seg/segment_{n}.ts"),
        ("/V2400/206598098.m4s", "/V{n}/{n}.m4s"),
        (
            "/af7a5/362643424e775d0393ddb46e145c2375367af7a5.webp",
            "/af{n}a{n}/{id}.webp",
        ),
        (
            "/v/123e4567-e89b-12d3-a456-426614174000/master.m3u8",
            "/v/{id}/master.m3u8",
        ),
        ("/t/AQEfKq2oMrLRiWL-p-VeIZ6WKRq/x", "/t/{id}/x"),
        ("/deadbeefcafebabe/x", "/{id}/x"),
        ("/live/john/s3cret/1234.ts", "/live/{cred}/{cred}/{n}.ts"),
        (
            "/live/john/s3cret/1234.m3u8",
            "/live/{cred}/{cred}/{n}.m3u8",
        ),
        ("/movie/john/s3cret/55.mkv", "/movie/{cred}/{cred}/{n}.mkv"),
        (
            "/series/john/s3cret/55.mp4",
            "/series/{cred}/{cred}/{n}.mp4",
        ),
        (
            "/timeshift/john/s3cret/60/2024-01-01:10-00/42.ts",
            "/timeshift/{cred}/{cred}/{n}/{n}-{n}-{n}:{n}-{n}/{n}.ts",
        ),
        ("/john/s3cret/1234", "/{cred}/{cred}/{n}"),
        ("/john/s3cret/1234.ts", "/{cred}/{cred}/{n}.ts"),
        ("/john/s3cret/1234.m3u8", "/{cred}/{cred}/{n}.m3u8"),
        ("/live/video_hd/00001.m4s", "/live/video_hd/{n}.m4s"),
        ("/news/2023/12345.html", "/news/{n}/{n}.html"),
        (
            "/get.php?username=john&password=s3cret&type=m3u",
            "/get.php",
        ),
        ("http://user:pw@host.example:80/a/b.ts?x=1", "/a/b.ts"),
        ("/caf\u{e9}/x", "/{id}/x"),
        ("/a%20b/x", "/{id}/x"),
        ("/a{b}/x", "/{id}/x"),
        ("example.com:443", "{authority}"),
    ];
    for (target, want) in cases {
        assert_eq!(path_template(target), want, "{target}");
    }
}

#[test]
fn template_is_bounded() {
    let long = "/abc".repeat(500);
    let t = path_template(&long);
    assert!(t.len() <= 256, "{}", t.len());
    assert!(t.ends_with("/{more}"));
    let wide = format!("/{}", "ab.".repeat(200));
    assert!(path_template(&wide).len() <= 256);
}

#[test]
fn extensions_and_query_names() {
    assert_eq!(extension("/a/b.M3U8?x=1").as_deref(), Some("m3u8"));
    assert_eq!(extension("/a/b.ts").as_deref(), Some("ts"));
    assert_eq!(extension("/a.b/c"), None);
    assert_eq!(extension("/a/.hidden"), None);
    assert_eq!(extension("/a/b.123"), None);
    assert_eq!(extension("/a/b.toolong"), None);
    assert_eq!(query_names("/p?z=1&a=2&a=3&m&=x").as_deref(), Some("a&m&z"));
    assert_eq!(
        query_names("/get.php?username=u&password=p&type=m3u_plus&output=ts").as_deref(),
        Some("output&password&type&username")
    );
    assert_eq!(
        query_names("/p?0123456789abcdef0123=1&sig2=x").as_deref(),
        Some("sig{n}&{id}")
    );
    assert_eq!(query_names("/p"), None);
    assert_eq!(query_names("/p?"), None);
}

#[test]
fn roles() {
    use template::{role, url_facts};
    let r = |t: &str, ct: Option<&str>| role(Some(&url_facts(t)), ct);
    assert_eq!(r("/a/index.m3u8", None), Role::Playlist);
    assert_eq!(
        r("/a/manifest", Some("application/dash+xml")),
        Role::Playlist
    );
    assert_eq!(r("/a/b.mpd", None), Role::Playlist);
    assert_eq!(r("/live/u/p/1.m3u8", None), Role::Playlist);
    assert_eq!(r("/live/u/p/1.ts", None), Role::PanelStream);
    assert_eq!(r("/live/u/p/1", Some("video/mp2t")), Role::PanelStream);
    assert_eq!(r("/movie/u/p/1.mkv", None), Role::PanelStream);
    assert_eq!(r("/u/p/1", Some("video/mp2t")), Role::PanelStream);
    assert_eq!(r("/u/p/1", Some("text/html")), Role::Other);
    assert_eq!(r("/u/p/1", None), Role::Other);
    assert_eq!(r("/get.php?username=u", None), Role::PanelApi);
    assert_eq!(r("/player_api.php", None), Role::PanelApi);
    assert_eq!(r("/xmltv.php", None), Role::PanelApi);
    assert_eq!(r("/panel_api.php", None), Role::PanelApi);
    for ext in [
        "ts", "m4s", "mp4", "m4a", "m4v", "aac", "cmfv", "cmfa", "vtt", "webm",
    ] {
        assert_eq!(r(&format!("/s/x.{ext}"), None), Role::Segment, "{ext}");
    }
    for ct in [
        "video/mp2t",
        "video/mp4",
        "video/iso.segment",
        "audio/mp4",
        "audio/aac",
    ] {
        assert_eq!(r("/s/x", Some(ct)), Role::Segment, "{ct}");
    }
    assert_eq!(r("/index.html", Some("text/html")), Role::Other);
    assert_eq!(
        role(None, Some("application/vnd.apple.mpegurl")),
        Role::Playlist
    );
    assert_eq!(role(None, None), Role::Other);
}

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{6,24}".prop_filter("not a word of the fixed layout", |s| {
        let l = s.to_ascii_lowercase();
        ![
            "live",
            "movie",
            "series",
            "timeshift",
            "player",
            "api",
            "get.php",
            "xmltv",
            "panel",
            "username",
            "password",
            "output",
            "type",
            "m3u",
            "plus",
            "action",
            "stream",
        ]
        .iter()
        .any(|w| w.contains(l.as_str()) || l.contains(w))
    })
}

proptest! {
    /// No credential of a panel URL survives in anything a transaction carries.
    #[test]
    fn credentials_never_leave(
        user in secret(),
        pass in secret(),
        id in 1u32..10_000_000,
        layout in 0usize..9,
    ) {
        let target = match layout {
            0 => format!("/live/{user}/{pass}/{id}.ts"),
            1 => format!("/live/{user}/{pass}/{id}.m3u8"),
            2 => format!("/movie/{user}/{pass}/{id}.mkv"),
            3 => format!("/series/{user}/{pass}/{id}.mp4"),
            4 => format!("/{user}/{pass}/{id}"),
            5 => format!("/{user}/{pass}/{id}.ts"),
            6 => format!("/get.php?username={user}&password={pass}&type=m3u_plus&output=ts"),
            7 => format!("/player_api.php?username={user}&password={pass}&action=get_live_streams"),
            _ => format!("http://{user}:{pass}@panel.example:8080/live/{user}/{pass}/{id}.ts"),
        };
        let req = format!("GET {target} HTTP/1.1\r\nHost: panel.example:8080\r\n\r\n");
        let (out, _) = run(&[b(C, &req), b(S, &ok("video/mp2t", "x"))]);
        let t = &out.txs[0];
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            t.path_template, t.extension, t.query_names, t.host
        );
        prop_assert!(!shown.contains(&user), "{} in {}", user, shown);
        prop_assert!(!shown.contains(&pass), "{} in {}", pass, shown);
        // Digits are never kept in a template but in the last segment's extension.
        let template = t.path_template.as_deref().unwrap_or("");
        let stem = match (template.rsplit_once('.'), t.extension.as_deref()) {
            (Some((stem, ext)), Some(e)) if ext.eq_ignore_ascii_case(e) => stem,
            _ => template,
        };
        prop_assert!(!stem.bytes().any(|c| c.is_ascii_digit()), "{}", template);
    }
}
