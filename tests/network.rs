//! Networking, end to end: every scenario runs inside a network namespace
//! the test made (see `support::netns`), so the bridge, the veths, table
//! `inet mini` and every packet stay there; the namespace goes when the
//! test ends, pass or fail.

mod support;

use std::time::Duration;

use support::life::text;
use support::{poll_until, Mini, IMAGE};

/// Start busybox httpd detached with `flags`, serving `page`; its id.
fn web(m: &Mini, flags: &[&str], page: &str) -> String {
    let script = format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
    let (code, out, err) = text(m.cmd(&args).output().unwrap());
    assert_eq!(code, 0, "run -d httpd: {err}");
    out.trim().to_string()
}

/// `mini ARGS`, in the test's namespace; (code, stdout, stderr).
fn mini(m: &Mini, args: &[&str]) -> (i32, String, String) {
    text(m.cmd(args).output().unwrap())
}

/// A `mini run --rm FLAGS IMAGE sh -c SCRIPT`; (code, stdout, stderr).
fn sh(m: &Mini, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    mini(m, &args)
}

/// curl URL from the test's namespace, retried while the server starts.
fn fetch(m: &Mini, url: &str) -> Option<String> {
    poll_until(Duration::from_secs(5), || {
        let (code, out, _) = m.ns().run("curl", &["-s", "-m", "2", url]);
        (code == 0).then_some(out)
    })
}

fn ip_of(m: &Mini, id: &str) -> String {
    let (code, out, err) = mini(m, &["inspect", id]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["NetworkSettings"]["IPAddress"].as_str().unwrap_or_default().to_string()
}

/// What a container leaves when it is gone: no veth (the kernel deletes
/// them with the container's namespace, a moment later), no endpoint, no
/// DNAT rule.
fn assert_nothing_left(m: &Mini) {
    let veths = || m.ns().links().into_iter().filter(|l| l.starts_with("mv")).collect::<Vec<_>>();
    let _ = poll_until(Duration::from_secs(5), || veths().is_empty().then_some(()));
    assert!(veths().is_empty(), "veths left: {:?}", veths());
    let recs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root.join("networks.json")).unwrap_or_else(|_| b"{}".to_vec()))
            .unwrap();
    assert_eq!(recs["endpoints"].as_array().map_or(0, Vec::len), 0, "endpoints left: {recs}");
    assert!(!m.ns().nft_table().contains("dnat"), "DNAT rules left: {}", m.ns().nft_table());
    assert_eq!(m.host_mounts(), Vec::<String>::new(), "mounts left");
}

#[test]
fn the_default_bridge_reaches_the_gateway_and_peers_by_address_but_not_by_name() {
    let Some(m) = Mini::networked("") else { return };
    let id = web(&m, &["--name", "peer"], "from-peer");
    let ip = ip_of(&m, &id);
    assert!(ip.starts_with("10.88."), "address {ip:?}");
    let script = format!(
        "ip -4 -o addr show eth0 | grep -q 'inet 10.88.' && echo addr; ip route | grep -q 'default via 10.88.0.1' && echo route; \
         ping -c1 -W2 10.88.0.1 >/dev/null && echo gateway; wget -q -O- http://{ip}/; \
         grep -q \"$(hostname)\" /etc/hosts && echo hosts; nslookup peer >/dev/null 2>&1 || grep -q peer /etc/hosts || echo no-names"
    );
    let (code, out, err) = sh(&m, &[], &script);
    assert_eq!((code, out.as_str()), (0, "addr\nroute\ngateway\nfrom-peer\nhosts\nno-names\n"), "{err}");
    // The MAC follows the address, as Docker's.
    let (_, out, _) = mini(&m, &["exec", &id, "cat", "/sys/class/net/eth0/address"]);
    let octets: Vec<String> = ip.split('.').map(|o| format!("{:02x}", o.parse::<u8>().unwrap())).collect();
    assert_eq!(out.trim(), format!("02:42:{}", octets.join(":")));
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
    assert_nothing_left(&m);
}

#[test]
fn a_published_port_answers_on_the_host_address_and_on_localhost() {
    let Some(m) = Mini::networked("") else { return };
    let _far = m.ns().uplink(); // gives the test's namespace a host address, 192.0.2.1
    let id = web(&m, &["--name", "site", "-p", "18080:80", "-p", "127.0.0.1::80"], "hello-port");
    assert_eq!(fetch(&m, "http://127.0.0.1:18080/").as_deref(), Some("hello-port\n"));
    assert_eq!(fetch(&m, "http://192.0.2.1:18080/").as_deref(), Some("hello-port\n"));
    let (code, out, err) = mini(&m, &["port", "site"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.contains(&"80/tcp -> 0.0.0.0:18080"), "{out}");
    let ephemeral = lines.iter().find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:")).expect("the 127.0.0.1 mapping");
    assert_eq!(fetch(&m, &format!("http://127.0.0.1:{ephemeral}/")).as_deref(), Some("hello-port\n"));
    let (_, ps, _) = mini(&m, &["ps"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    // The same port again: busy, refused, nothing left of the second one.
    let before = m.containers();
    let (code, _, err) = mini(&m, &["run", "--rm", "-p", "18080:80", IMAGE, "true"]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("0.0.0.0:18080") && err.contains("already allocated"), "{err}");
    assert_eq!(m.containers(), before);
    let (code, out, err) = mini(&m, &["port", "site", "81"]);
    assert_eq!(code, 125, "{out}");
    assert!(err.contains("No public port '81/tcp' published"), "{err}");
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
    assert_nothing_left(&m);
    assert!(m.ns().run("curl", &["-s", "-m", "1", "http://127.0.0.1:18080/"]).0 != 0, "still answering");
}

#[test]
fn publish_all_maps_every_exposed_port() {
    let Some(m) = Mini::networked("") else { return };
    // The fixture exposes no port: -P with one given by -p publishes that.
    let id = web(&m, &["-P", "-p", "80"], "any");
    let (code, out, err) = mini(&m, &["port", &id, "80/tcp"]);
    assert_eq!(code, 0, "{err}");
    let port = out.trim().strip_prefix("0.0.0.0:").expect("one address").to_string();
    assert!(port.parse::<u16>().unwrap() > 1024, "{out}");
    assert_eq!(fetch(&m, &format!("http://127.0.0.1:{port}/")).as_deref(), Some("any\n"));
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
}

#[test]
fn outbound_traffic_is_masqueraded_behind_the_host_address() {
    let Some(m) = Mini::networked("") else { return };
    let far = m.ns().uplink();
    // The far side's server answers with the source address it saw.
    let server = "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                  s.bind(('192.0.2.2', 9000)); s.listen(1); print('ready', flush=True)\n\
                  c,a=s.accept(); c.sendall((a[0]+'\\n').encode()); c.close()";
    let mut srv = far.cmd("python3", &["-c", server]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(srv.stdout.as_mut().unwrap()), &mut ready).unwrap();
    let (code, out, err) = sh(&m, &[], "nc -w 3 192.0.2.2 9000 </dev/null");
    let _ = srv.kill();
    let _ = srv.wait();
    assert_eq!((code, out.as_str()), (0, "192.0.2.1\n"), "{err}");
}

#[test]
fn host_none_and_container_modes_share_or_hide_interfaces() {
    let Some(m) = Mini::networked("") else { return };
    let (_, host_links, _) = m.ns().run("ip", &["-o", "link", "show"]);
    let count = host_links.lines().count();
    let (code, out, err) = sh(&m, &["--network", "host"], "ip -o link show | wc -l");
    assert_eq!((code, out.trim()), (0, count.to_string().as_str()), "{err}");
    let (code, out, err) = sh(&m, &["--network", "none"], "ls /sys/class/net");
    assert_eq!((code, out.as_str()), (0, "lo\n"), "{err}");
    let id = web(&m, &["--name", "box"], "shared");
    let ip = ip_of(&m, &id);
    let (code, out, err) =
        sh(&m, &["--network", "container:box"], "ip -4 -o addr show eth0; wget -q -O- http://127.0.0.1/");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("inet {ip}/16")) && out.ends_with("shared\n"), "{out}");
    // Nothing of box's network is given up when the joiner leaves.
    assert_eq!(fetch(&m, &format!("http://{ip}/")).as_deref(), Some("shared\n"));
    let (code, _, err) = sh(&m, &["--network", "container:nosuch"], "true");
    assert_eq!(code, 125);
    assert!(err.contains("nosuch"), "{err}");
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
}

#[test]
fn containers_on_a_user_network_resolve_each_other_and_other_networks_are_walled_off() {
    let Some(m) = Mini::networked("") else { return };
    let (code, _, err) = mini(&m, &["network", "create", "--subnet", "10.91.0.0/24", "front"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = mini(&m, &["network", "create", "back"]);
    assert_eq!(code, 0, "{err}");
    let db =
        web(&m, &["--name", "db", "--network", "front", "--network-alias", "database", "--ip", "10.91.0.50"], "db");
    assert_eq!(ip_of(&m, &db), "10.91.0.50");
    let (code, out, err) =
        sh(&m, &["--network", "front", "--name", "client"], "wget -q -O- http://db/; wget -q -O- http://database/");
    assert_eq!((code, out.as_str()), (0, "db\ndb\n"), "{err}");
    // A container that comes later is in the earlier one's hosts file.
    let late = web(&m, &["--name", "late", "--network", "front"], "late");
    let (_, hosts, _) = mini(&m, &["exec", &db, "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tlate "), "{hosts}");
    assert_eq!(mini(&m, &["rm", "-f", &late]).0, 0);
    let (_, hosts, _) = mini(&m, &["exec", &db, "cat", "/etc/hosts"]);
    assert!(!hosts.contains("late"), "{hosts}");
    // From another network: neither the name nor the address.
    let (code, out, _) = sh(&m, &["--network", "back"], "wget -q -T 2 -O- http://10.91.0.50/ || echo walled");
    assert_eq!((code, out.as_str()), (0, "walled\n"));
    // In use: not removable; inspect names the container.
    let (code, _, err) = mini(&m, &["network", "rm", "front"]);
    assert_eq!(code, 125);
    assert!(err.contains("active endpoints") && err.contains("db"), "{err}");
    let (_, out, _) = mini(&m, &["network", "inspect", "front"]);
    assert!(out.contains("10.91.0.50/24") && out.contains("\"db\""), "{out}");
    assert_eq!(mini(&m, &["rm", "-f", &db]).0, 0);
    assert_eq!(mini(&m, &["network", "rm", "front"]).0, 0);
    let (_, out, _) = mini(&m, &["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\nback\n");
    let (_, out, _) = mini(&m, &["network", "ls"]);
    assert!(out.contains(" bridge ") && !out.contains("front") && !out.contains("back"), "{out}");
    assert!(!m.ns().links().iter().any(|l| l.starts_with("minibr-")), "{:?}", m.ns().links());
    assert_nothing_left(&m);
}

#[test]
fn fifty_concurrent_runs_get_fifty_addresses_and_leave_nothing() {
    let Some(m) = Mini::networked("") else { return };
    let children: Vec<_> = (0..50)
        .map(|_| m.cmd(&["run", "-d", IMAGE, "sleep", "1000"]).stdout(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "run -d: {}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
        .collect();
    let mut ips: Vec<String> = ids.iter().map(|id| ip_of(&m, id)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "{ips:?}");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    assert_eq!(mini(&m, &args).0, 0);
    assert_nothing_left(&m);
}

#[test]
fn a_killed_foreground_mini_and_a_killed_monitor_are_swept_by_the_next_mini() {
    let Some(m) = Mini::networked("") else { return };
    let mut fg = m.cmd(&["run", "--rm", "-p", "18181:80", IMAGE, "sleep", "1000"]).spawn().unwrap();
    support::wait_for(Duration::from_secs(10), "the foreground container's endpoint", || {
        std::fs::read_to_string(m.root.join("networks.json")).ok().filter(|t| t.contains("18181")).map(drop)
    });
    let _ = fg.kill(); // SIGKILL of the mini we started
    let _ = fg.wait();
    let id = web(&m, &["-p", "18182:80"], "x");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root.join("containers").join(&id).join("state.json")).unwrap())
            .unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    // SAFETY: kill by pid of the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    support::wait_for(Duration::from_secs(5), "the monitor to go", || {
        (!std::path::Path::new(&format!("/proc/{monitor}")).exists()).then_some(())
    });
    // The container itself dies with its monitor (pdeathsig) or is killed
    // by rm; the next mini sweeps both endpoints.
    let (code, _, err) = mini(&m, &["ps", "-a"]);
    assert_eq!(code, 0, "{err}");
    let _ = mini(&m, &["rm", "-f", &id]);
    assert_nothing_left(&m);
}

#[test]
fn bad_network_input_is_one_line_exit_125_and_leaves_nothing() {
    let Some(m) = Mini::networked("") else { return };
    let (code, _, err) = mini(&m, &["network", "create", "--subnet", "10.92.0.0/24", "taken"]);
    assert_eq!(code, 0, "{err}");
    let cases: [(&[&str], &[&str]); 9] = [
        (&["run", "--rm", "--network", "nosuch", IMAGE, "true"], &["network nosuch not found"]),
        (&["run", "--rm", "-p", "99999:80", IMAGE, "true"], &["99999:80", "65535"]),
        (&["run", "--rm", "-p", "abc", IMAGE, "true"], &["\"abc\""]),
        (&["run", "--rm", "--network", "taken", "--ip", "10.93.0.5", IMAGE, "true"], &["10.93.0.5", "10.92.0.0/24"]),
        (&["run", "--rm", "--ip", "10.88.0.5", IMAGE, "true"], &["--ip", "user networks"]),
        (&["network", "create", "--subnet", "10.92.0.128/25", "overlap"], &["overlaps", "taken"]),
        (&["network", "create", "--subnet", "10.94.0.0/33", "bad"], &["10.94.0.0/33"]),
        (&["network", "create", "--subnet", "banana", "bad"], &["banana"]),
        (&["network", "rm", "bridge"], &["default network"]),
    ];
    let containers = m.containers();
    for (args, needles) in cases {
        let (code, out, err) = mini(&m, args);
        support::Outcome { code, stdout: out, stderr: err }.assert_error(needles);
        assert_eq!(m.containers(), containers, "mini {args:?} left a container");
    }
    let (_, out, _) = mini(&m, &["network", "ls"]);
    assert!(!out.contains("overlap") && !out.contains(" bad "), "{out}");
    let (_, _, _) = mini(&m, &["network", "rm", "taken"]);
    assert_nothing_left(&m);
}

#[test]
fn hosts_and_resolv_conf_take_the_dns_and_add_host_flags() {
    let Some(m) = Mini::networked("") else { return };
    let flags = [
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "--hostname",
        "web1",
        "--mac-address",
        "02:11:22:33:44:55",
    ];
    let (code, out, err) = sh(&m, &flags, "cat /etc/hosts /etc/resolv.conf /sys/class/net/eth0/address");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10.1.2.3\tdb.local\n") && out.contains("10.88.0.1\tgw\n"), "{out}");
    assert!(out.contains("\tweb1\n") && out.contains("10.88.0."), "{out}");
    assert!(out.contains("nameserver 10.0.0.53\nsearch corp.example\noptions ndots:2\n"), "{out}");
    assert!(out.ends_with("02:11:22:33:44:55\n"), "{out}");
    let (code, _, err) = sh(&m, &["--mac-address", "01:00:5e:00:00:01"], "true");
    assert_eq!(code, 125, "a multicast MAC is refused: {err}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let Some(m) = Mini::networked("") else { return };
    assert_eq!(mini(&m, &["network", "create", "--subnet", "10.95.0.0/24", "extra"]).0, 0);
    let id = web(&m, &["--name", "box"], "boxed");
    let (code, _, err) = mini(&m, &["network", "connect", "--alias", "boxy", "--ip", "10.95.0.9", "extra", "box"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = mini(&m, &["exec", &id, "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains("inet 10.95.0.9/24"), "{out}");
    let (code, out, err) = sh(&m, &["--network", "extra"], "wget -q -O- http://boxy/; wget -q -O- http://box/");
    assert_eq!((code, out.as_str()), (0, "boxed\nboxed\n"), "{err}");
    let (code, _, err) = mini(&m, &["network", "connect", "extra", "box"]);
    assert_eq!(code, 125);
    assert!(err.contains("already connected"), "{err}");
    assert_eq!(mini(&m, &["network", "disconnect", "extra", "box"]).0, 0);
    let (_, out, _) = mini(&m, &["exec", &id, "ls", "/sys/class/net"]);
    assert_eq!(out, "eth0\nlo\n");
    let (code, _, err) = mini(&m, &["network", "disconnect", "extra", "box"]);
    assert_eq!(code, 125);
    assert!(err.contains("not connected"), "{err}");
    // A stopped container is not connected (its networks are its create's).
    let stopped = mini(&m, &["create", "--name", "idle", IMAGE, "true"]).1;
    let (code, _, err) = mini(&m, &["network", "connect", "extra", stopped.trim()]);
    assert_eq!(code, 125);
    assert!(err.contains("not running"), "{err}");
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
    assert_nothing_left(&m);
}

#[test]
fn without_nft_a_bridged_run_fails_whole_and_the_next_one_gets_its_rules() {
    let Some(m) = Mini::networked("") else { return };
    // nft lives in /usr/sbin: a PATH without it.
    let (code, _, err) = text(m.cmd(&["run", "--rm", IMAGE, "true"]).env("PATH", "/usr/bin:/bin").output().unwrap());
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("nftables"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!m.ns().links().contains(&"mini0".to_string()), "a bridge without rules stayed: {:?}", m.ns().links());
    assert!(m.containers().is_empty());
    let (code, _, err) = sh(&m, &[], "true");
    assert_eq!(code, 0, "{err}");
    assert!(m.ns().nft_table().contains("masquerade"), "{}", m.ns().nft_table());
}

#[test]
fn a_renamed_container_is_found_by_its_new_name_on_its_network() {
    let Some(m) = Mini::networked("") else { return };
    assert_eq!(mini(&m, &["network", "create", "named"]).0, 0);
    let id = web(&m, &["--name", "before", "--network", "named"], "renamed");
    let (code, _, err) = mini(&m, &["rename", "before", "after"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        sh(&m, &["--network", "named"], "wget -q -O- http://after/; grep -q before /etc/hosts || echo old-name-gone");
    assert_eq!((code, out.as_str()), (0, "renamed\nold-name-gone\n"), "{err}");
    assert_eq!(mini(&m, &["rm", "-f", &id]).0, 0);
}
