//! Kubernetes' CEL libraries (k8s.io/apiserver/pkg/cel/library) as overloads on the
//! environment: lists (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`), regex
//! (`find`, `findAll`), URLs, sets, quantities, and IP addresses and CIDRs.

use super::quantity::Quantity;
use super::url::KubeUrl;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString, Type, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE,
};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use std::any::Any;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// Declares every Kubernetes library function on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    // Lists.
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload("indexOf", "list_index_of", LIST_TYPE, vec![DYN_TYPE], index_of)?;
    env.add_member_overload("lastIndexOf", "list_last_index_of", LIST_TYPE, vec![DYN_TYPE], last_index_of)?;
    // Regex.
    env.add_member_overload(MATCHES, "string_matches_cached", STRING_TYPE, vec![STRING_TYPE], matches)?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload("findAll", "string_find_all", STRING_TYPE, vec![STRING_TYPE], find_all)?;
    env.add_member_overload("findAll", "string_find_all_n", STRING_TYPE, vec![STRING_TYPE, INT_TYPE], find_all_n)?;
    // Sets.
    env.add_overload("sets.contains", "sets_contains", vec![LIST_TYPE, LIST_TYPE], sets_contains)?;
    env.add_overload("sets.equivalent", "sets_equivalent", vec![LIST_TYPE, LIST_TYPE], sets_equivalent)?;
    env.add_overload("sets.intersects", "sets_intersects", vec![LIST_TYPE, LIST_TYPE], sets_intersects)?;
    // URLs.
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", URL_TYPE, vec![], |a| url_part(a, |u| u.scheme.clone()))?;
    env.add_member_overload("getHost", "url_get_host", URL_TYPE, vec![], |a| url_part(a, |u| u.host.clone()))?;
    env.add_member_overload("getHostname", "url_get_hostname", URL_TYPE, vec![], |a| url_part(a, KubeUrl::hostname))?;
    env.add_member_overload("getPort", "url_get_port", URL_TYPE, vec![], |a| url_part(a, KubeUrl::port))?;
    env.add_member_overload("getEscapedPath", "url_get_escaped_path", URL_TYPE, vec![], |a| url_part(a, KubeUrl::escaped_path))?;
    env.add_member_overload("getQuery", "url_get_query", URL_TYPE, vec![], url_query)?;
    // Quantities.
    env.add_overload("quantity", "string_to_quantity", vec![STRING_TYPE], quantity)?;
    env.add_overload("isQuantity", "is_quantity_string", vec![STRING_TYPE], is_quantity)?;
    env.add_member_overload("sign", "quantity_sign", QUANTITY_TYPE, vec![], |a| Ok(CowVal::owned(CelInt::from(q(&a[0])?.sign()))))?;
    env.add_member_overload("isInteger", "quantity_is_integer", QUANTITY_TYPE, vec![], |a| {
        Ok(CowVal::owned(CelBool::from(q(&a[0])?.as_integer().is_some())))
    })?;
    env.add_member_overload("asInteger", "quantity_as_integer", QUANTITY_TYPE, vec![], quantity_as_integer)?;
    env.add_member_overload("asApproximateFloat", "quantity_as_float", QUANTITY_TYPE, vec![], |a| {
        Ok(CowVal::owned(CelDouble::from(q(&a[0])?.as_f64())))
    })?;
    env.add_member_overload("isGreaterThan", "quantity_is_greater_than", QUANTITY_TYPE, vec![QUANTITY_TYPE], |a| {
        Ok(CowVal::owned(CelBool::from(q(&a[0])?.cmp(q(&a[1])?) == Ordering::Greater)))
    })?;
    env.add_member_overload("isLessThan", "quantity_is_less_than", QUANTITY_TYPE, vec![QUANTITY_TYPE], |a| {
        Ok(CowVal::owned(CelBool::from(q(&a[0])?.cmp(q(&a[1])?) == Ordering::Less)))
    })?;
    env.add_member_overload("compareTo", "quantity_compare_to", QUANTITY_TYPE, vec![QUANTITY_TYPE], |a| {
        Ok(CowVal::owned(CelInt::from(q(&a[0])?.cmp(q(&a[1])?) as i64)))
    })?;
    env.add_member_overload("add", "quantity_add", QUANTITY_TYPE, vec![QUANTITY_TYPE], |a| quantity_result(q(&a[0])?.add(q(&a[1])?)))?;
    env.add_member_overload("add", "quantity_add_int", QUANTITY_TYPE, vec![INT_TYPE], |a| {
        quantity_result(q(&a[0])?.add(&Quantity::from_int(int(&a[1])?)))
    })?;
    env.add_member_overload("sub", "quantity_sub", QUANTITY_TYPE, vec![QUANTITY_TYPE], |a| {
        quantity_result(q(&a[0])?.add(&q(&a[1])?.negated()))
    })?;
    env.add_member_overload("sub", "quantity_sub_int", QUANTITY_TYPE, vec![INT_TYPE], |a| {
        quantity_result(q(&a[0])?.add(&Quantity::from_int(int(&a[1])?).negated()))
    })?;
    // IP addresses and CIDRs.
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], |a| Ok(CowVal::owned(CelBool::from(parse_ip(string(&a[0])?).is_ok()))))?;
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], |a| {
        Ok(CowVal::owned(Ip(parse_ip(string(&a[0])?).map_err(|e| fail("ip", e))?)))
    })?;
    env.add_overload("string", "ip_to_string", vec![IP_TYPE], |a| Ok(CowVal::owned(CelString::from(ip(&a[0])?.0.to_string()))))?;
    env.add_member_overload("family", "ip_family", IP_TYPE, vec![], |a| {
        Ok(CowVal::owned(CelInt::from(if ip(&a[0])?.0.is_ipv4() { 4 } else { 6 })))
    })?;
    env.add_member_overload("isUnspecified", "ip_is_unspecified", IP_TYPE, vec![], |a| ip_test(a, |ip| ip.is_unspecified()))?;
    env.add_member_overload("isLoopback", "ip_is_loopback", IP_TYPE, vec![], |a| ip_test(a, |ip| ip.is_loopback()))?;
    env.add_member_overload("isLinkLocalMulticast", "ip_is_link_local_multicast", IP_TYPE, vec![], |a| {
        ip_test(a, is_link_local_multicast)
    })?;
    env.add_member_overload("isLinkLocalUnicast", "ip_is_link_local_unicast", IP_TYPE, vec![], |a| ip_test(a, is_link_local_unicast))?;
    env.add_member_overload("isGlobalUnicast", "ip_is_global_unicast", IP_TYPE, vec![], |a| ip_test(a, is_global_unicast))?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], |a| Ok(CowVal::owned(CelBool::from(parse_cidr(string(&a[0])?).is_ok()))))?;
    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], |a| {
        Ok(CowVal::owned(parse_cidr(string(&a[0])?).map_err(|e| fail("cidr", e))?))
    })?;
    env.add_overload("string", "cidr_to_string", vec![CIDR_TYPE], |a| Ok(CowVal::owned(CelString::from(cidr(&a[0])?.to_string()))))?;
    env.add_member_overload("ip", "cidr_ip", CIDR_TYPE, vec![], |a| Ok(CowVal::owned(Ip(cidr(&a[0])?.addr))))?;
    env.add_member_overload("masked", "cidr_masked", CIDR_TYPE, vec![], |a| Ok(CowVal::owned(cidr(&a[0])?.masked())))?;
    env.add_member_overload("prefixLength", "cidr_prefix_length", CIDR_TYPE, vec![], |a| {
        Ok(CowVal::owned(CelInt::from(i64::from(cidr(&a[0])?.prefix))))
    })?;
    env.add_member_overload("containsIP", "cidr_contains_ip", CIDR_TYPE, vec![IP_TYPE], |a| {
        Ok(CowVal::owned(CelBool::from(cidr(&a[0])?.contains(ip(&a[1])?.0))))
    })?;
    env.add_member_overload("containsIP", "cidr_contains_ip_string", CIDR_TYPE, vec![STRING_TYPE], |a| {
        let other = parse_ip(string(&a[1])?).map_err(|e| fail("containsIP", e))?;
        Ok(CowVal::owned(CelBool::from(cidr(&a[0])?.contains(other))))
    })?;
    env.add_member_overload("containsCIDR", "cidr_contains_cidr", CIDR_TYPE, vec![CIDR_TYPE], |a| {
        Ok(CowVal::owned(CelBool::from(cidr(&a[0])?.contains_cidr(cidr(&a[1])?))))
    })?;
    env.add_member_overload("containsCIDR", "cidr_contains_cidr_string", CIDR_TYPE, vec![STRING_TYPE], |a| {
        let other = parse_cidr(string(&a[1])?).map_err(|e| fail("containsCIDR", e))?;
        Ok(CowVal::owned(CelBool::from(cidr(&a[0])?.contains_cidr(&other))))
    })?;
    Ok(())
}

fn fail(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn unexpected(val: &dyn Val, want: &str) -> ExecutionError {
    ExecutionError::UnexpectedType { got: val.get_type().name().to_owned(), want: want.to_owned() }
}

fn string<'a>(val: &'a CowVal<'_, '_>) -> Result<&'a str, ExecutionError> {
    val.downcast_ref::<CelString>().map(|s| s.inner()).ok_or_else(|| unexpected(val.as_ref(), "string"))
}

fn int(val: &CowVal<'_, '_>) -> Result<i64, ExecutionError> {
    val.downcast_ref::<CelInt>().map(|i| *i.inner()).ok_or_else(|| unexpected(val.as_ref(), "int"))
}

fn elements<'b, 'v>(val: &'b (dyn Val + 'v)) -> Result<Vec<&'b (dyn Val + 'v)>, ExecutionError> {
    let iterable = val.as_iterable().ok_or_else(|| unexpected(val, "list"))?;
    let mut items = iterable.iter();
    let mut out = Vec::new();
    while let Some(item) = items.next() {
        out.push(item);
    }
    Ok(out)
}

fn compare(a: &dyn Val, b: &dyn Val) -> Result<Ordering, ExecutionError> {
    a.as_comparer().ok_or_else(|| unexpected(a, "comparable"))?.compare(b)
}

// ---- lists ----

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = elements(args[0].as_ref())?;
    for pair in items.windows(2) {
        if compare(pair[0], pair[1])? == Ordering::Greater {
            return Ok(CowVal::owned(CelBool::from(false)));
        }
    }
    Ok(CowVal::owned(CelBool::from(true)))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = elements(args[0].as_ref())?;
    let Some((first, rest)) = items.split_first() else {
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    let mut total: Box<dyn Val + 'v> = first.clone_as_boxed();
    for item in rest {
        let adder = total.as_adder().ok_or_else(|| unexpected(total.as_ref(), "summable"))?;
        let next = adder.add(*item)?.into_owned();
        total = next;
    }
    Ok(CowVal::from(total))
}

fn extreme<'b, 'v>(args: Vec<CowVal<'b, 'v>>, function: &str, keep: Ordering) -> Ret<'b, 'v> {
    let items = elements(args[0].as_ref())?;
    let mut best = *items.first().ok_or_else(|| fail(function, format!("{function}(list) called on an empty list")))?;
    for item in &items[1..] {
        if compare(*item, best)? == keep {
            best = *item;
        }
    }
    Ok(CowVal::from(best.clone_as_boxed()))
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    extreme(args, "min", Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    extreme(args, "max", Ordering::Greater)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = elements(args[0].as_ref())?;
    let found = items.iter().position(|item| item.equals(args[1].as_ref()));
    Ok(CowVal::owned(CelInt::from(found.map_or(-1, |i| i as i64))))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = elements(args[0].as_ref())?;
    let found = items.iter().rposition(|item| item.equals(args[1].as_ref()));
    Ok(CowVal::owned(CelInt::from(found.map_or(-1, |i| i as i64))))
}

// ---- regex ----

/// Compiled patterns, shared: patterns come from rule text, so there are few of them.
pub fn regex(pattern: &str) -> Result<regex::Regex, ExecutionError> {
    static CACHE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return Ok(re.clone());
    }
    // Compiled outside the lock; bounded in size, as a pattern may come from the object.
    let re = regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
        // The regex crate explains over several lines; Go says `error parsing regexp: <why>: `<pattern>``.
        let why = e.to_string().lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
        fail("regex", format!("error parsing regexp: {why}: `{pattern}`"))
    })?;
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= 512 {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    Ok(re)
}

/// What `matches` calls compile to (a name no rule can spell).
pub const MATCHES: &str = "@k8s_matches";

fn matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let re = regex(string(&args[1])?)?;
    Ok(CowVal::owned(CelBool::from(re.is_match(string(&args[0])?))))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let re = regex(string(&args[1])?)?;
    let found = re.find(string(&args[0])?).map(|m| m.as_str().to_string()).unwrap_or_default();
    Ok(CowVal::owned(CelString::from(found)))
}

fn find_all_up_to<'b, 'v>(args: &[CowVal<'b, 'v>], limit: i64) -> Ret<'b, 'v> {
    let re = regex(string(&args[1])?)?;
    let limit = if limit < 0 { usize::MAX } else { limit as usize };
    let found: Vec<Box<dyn Val + 'v>> =
        re.find_iter(string(&args[0])?).take(limit).map(|m| Box::new(CelString::from(m.as_str().to_string())) as Box<dyn Val>).collect();
    Ok(CowVal::owned(CelList::from(found)))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    find_all_up_to(&args, -1)
}

fn find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let n = int(&args[2])?;
    find_all_up_to(&args, n)
}

// ---- sets ----

fn contains_all(haystack: &[&dyn Val], needles: &[&dyn Val]) -> bool {
    needles.iter().all(|n| haystack.iter().any(|h| h.equals(*n)))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (elements(args[0].as_ref())?, elements(args[1].as_ref())?);
    Ok(CowVal::owned(CelBool::from(contains_all(&a, &b))))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (elements(args[0].as_ref())?, elements(args[1].as_ref())?);
    Ok(CowVal::owned(CelBool::from(contains_all(&a, &b) && contains_all(&b, &a))))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (elements(args[0].as_ref())?, elements(args[1].as_ref())?);
    Ok(CowVal::owned(CelBool::from(b.iter().any(|n| a.iter().any(|h| h.equals(*n))))))
}

// ---- opaque kube types ----

/// Implements `Val` for one of the library's own value types.
macro_rules! opaque_val {
    ($ty:ty, $cel_type:ident, $name:literal) => {
        /// The CEL type of the library's values of this kind.
        pub const $cel_type: Type = Type::new_unspecified_type($name);
        impl Val for $ty {
            fn get_type(&self) -> &Type {
                <Self as Val>::cel_type()
            }
            fn cel_type() -> &'static Type {
                static TYPE: Type = $cel_type;
                &TYPE
            }
            fn equals(&self, other: &dyn Val) -> bool {
                other.downcast_ref::<$ty>().is_some_and(|o| o == self)
            }
            fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn Any> {
                Some(self)
            }
        }
        impl StaticVal for $ty {}
    };
}

opaque_val!(KubeUrl, URL_TYPE, "kubernetes.URL");
opaque_val!(Quantity, QUANTITY_TYPE, "kubernetes.Quantity");
opaque_val!(Ip, IP_TYPE, "net.IP");
opaque_val!(Cidr, CIDR_TYPE, "net.CIDR");

fn url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let parsed =
        KubeUrl::parse(string(&args[0])?).map_err(|e| fail("url", format!("URL parse error during conversion from string: {e}")))?;
    Ok(CowVal::owned(parsed))
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    Ok(CowVal::owned(CelBool::from(KubeUrl::parse(string(&args[0])?).is_ok())))
}

fn url_part<'b, 'v>(args: Vec<CowVal<'b, 'v>>, part: fn(&KubeUrl) -> String) -> Ret<'b, 'v> {
    let u = args[0].downcast_ref::<KubeUrl>().ok_or_else(|| unexpected(args[0].as_ref(), "kubernetes.URL"))?;
    Ok(CowVal::owned(CelString::from(part(u))))
}

fn url_query<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let u = args[0].downcast_ref::<KubeUrl>().ok_or_else(|| unexpected(args[0].as_ref(), "kubernetes.URL"))?;
    let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::new();
    for (key, values) in u.query() {
        let list: Vec<Box<dyn Val + 'v>> = values.into_iter().map(|v| Box::new(CelString::from(v)) as Box<dyn Val>).collect();
        map.insert(CelMapKey::from(key), Box::new(CelList::from(list)));
    }
    Ok(CowVal::owned(CelMap::from(map)))
}

fn q<'a>(val: &'a CowVal<'_, '_>) -> Result<&'a Quantity, ExecutionError> {
    val.downcast_ref::<Quantity>().ok_or_else(|| unexpected(val.as_ref(), "kubernetes.Quantity"))
}

fn quantity_result<'b, 'v>(result: Option<Quantity>) -> Ret<'b, 'v> {
    result.map(CowVal::owned).ok_or_else(|| fail("quantity", "arithmetic overflow"))
}

fn quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    Ok(CowVal::owned(Quantity::parse(string(&args[0])?).map_err(|e| fail("quantity", e))?))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    Ok(CowVal::owned(CelBool::from(Quantity::parse(string(&args[0])?).is_ok())))
}

fn quantity_as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let value = q(&args[0])?.as_integer().ok_or_else(|| fail("asInteger", "cannot convert value to integer"))?;
    Ok(CowVal::owned(CelInt::from(value)))
}

/// An IP address (`ip()`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ip(IpAddr);

/// A CIDR (`cidr()`): an address and a prefix length.
#[derive(Debug, Clone, PartialEq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn ip<'a>(val: &'a CowVal<'_, '_>) -> Result<&'a Ip, ExecutionError> {
    val.downcast_ref::<Ip>().ok_or_else(|| unexpected(val.as_ref(), "net.IP"))
}

fn cidr<'a>(val: &'a CowVal<'_, '_>) -> Result<&'a Cidr, ExecutionError> {
    val.downcast_ref::<Cidr>().ok_or_else(|| unexpected(val.as_ref(), "net.CIDR"))
}

fn ip_test<'b, 'v>(args: Vec<CowVal<'b, 'v>>, test: fn(&IpAddr) -> bool) -> Ret<'b, 'v> {
    Ok(CowVal::owned(CelBool::from(test(&ip(&args[0])?.0))))
}

/// Parses an IP address as Kubernetes does: no zones, no IPv4-mapped IPv6 addresses.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if s.contains('%') {
        return Err(format!("IP address with zone value is not allowed: {s}"));
    }
    let addr: IpAddr = s
        .parse()
        .map_err(|_| format!("IP Address {s:?} parse error during conversion from string: ParseAddr({s:?}): unable to parse IP"))?;
    if let IpAddr::V6(v6) = addr {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("IPv4-mapped IPv6 address {s:?} is not allowed"));
        }
    }
    Ok(addr)
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("network address parse error during conversion from string: netip.ParsePrefix({s:?}): no '/'"))?;
    let addr = parse_ip(addr)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max && !prefix.starts_with('+')).ok_or_else(|| {
        format!("network address parse error during conversion from string: netip.ParsePrefix({s:?}): bad bits after slash")
    })?;
    Ok(Cidr { addr, prefix })
}

fn is_link_local_multicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

fn is_link_local_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast() || v4.is_link_local()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() || is_link_local_unicast(ip)),
    }
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Cidr {
    fn mask(&self) -> u128 {
        let (_, width) = bits(self.addr);
        if self.prefix == 0 {
            0
        } else {
            (u128::MAX << (width - self.prefix)) & if width == 32 { u128::from(u32::MAX) } else { u128::MAX }
        }
    }

    fn contains(&self, other: IpAddr) -> bool {
        let (mine, width) = bits(self.addr);
        let (theirs, other_width) = bits(other);
        width == other_width && mine & self.mask() == theirs & self.mask()
    }

    fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    fn masked(&self) -> Cidr {
        let (value, width) = bits(self.addr);
        let masked = value & self.mask();
        let addr = if width == 32 {
            IpAddr::from(std::net::Ipv4Addr::from(masked as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(masked))
        };
        Cidr { addr, prefix: self.prefix }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
