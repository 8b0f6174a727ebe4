// The review page. Every piece of content goes into the page through textContent (never innerHTML),
// so passages holding HTML or <script> show as text. Decisions wait in localStorage until the
// server has acknowledged them, and are re-sent (with the version they were made on) until it does.
"use strict";

const T = {
  zh: {
    title: "问答审核", logout: "退出", signin: "登录", f_status: "状态", f_doc: "来源文件", f_annotator: "审核人",
    s_all: "全部", s_pending: "待审核", s_approved: "已通过", s_rejected: "已驳回", s_conflict: "有分歧",
    question: "问题", answer: "答案", edit_hint: "编辑中：Ctrl+Enter 保存并通过，Esc 取消", reason: "驳回理由",
    reason_hint: "Ctrl+Enter 或回车确认驳回，Esc 取消", approve: "通过", edit: "修改", reject: "驳回",
    prev: "上一条", next: "下一条", stale_title: "保存冲突：此条目在您打开后已被他人修改",
    theirs: "当前版本（已保存）", yours: "您的版本（未保存）", keep_mine: "仍提交我的版本", drop_mine: "放弃我的版本",
    conflict_title: "审核意见有分歧，请负责人裁定", history: "审核记录",
    keys: "快捷键：j/k 下一条/上一条 · a 通过 · e 修改 · r 驳回 · Ctrl+Enter 确认",
    name_hint: "请输入您的姓名（将记录在每条审核意见上）", token_hint: "请输入管理员发给您的令牌",
    reviewed: "已审核", of: "/", me: "我已审", saved: "已保存", saving: "保存中…",
    offline: "无法连接服务器，正在重试；您的审核意见已保留，不会丢失。", adopt: "采用此版本", adopt_reject: "确认驳回",
    none: "（暂无）", edited: "（修改了答案）", settled: "裁定", via: "经由", empty: "没有符合条件的条目",
    decision_accept: "通过", decision_reject: "驳回", signed_out: "登录已失效，请重新登录",
  },
  en: {
    title: "Q&A review", logout: "Sign out", signin: "Sign in", f_status: "Status", f_doc: "Source document",
    f_annotator: "Annotator", s_all: "All", s_pending: "Pending", s_approved: "Approved", s_rejected: "Rejected",
    s_conflict: "Conflict", question: "Question", answer: "Answer",
    edit_hint: "Editing: Ctrl+Enter saves and approves, Esc cancels", reason: "Reason for rejecting",
    reason_hint: "Ctrl+Enter or Enter rejects, Esc cancels", approve: "Approve", edit: "Edit", reject: "Reject",
    prev: "Previous", next: "Next", stale_title: "Save conflict: someone changed this item after you opened it",
    theirs: "Current version (saved)", yours: "Your version (not saved)", keep_mine: "Submit mine anyway",
    drop_mine: "Discard mine", conflict_title: "Annotators disagree: a lead settles it", history: "History",
    keys: "Keys: j/k next/previous · a approve · e edit · r reject · Ctrl+Enter confirm",
    name_hint: "Your name (recorded on every decision)", token_hint: "The token your lead gave you",
    reviewed: "reviewed", of: "/", me: "by me", saved: "Saved", saving: "Saving…",
    offline: "Cannot reach the server, retrying; your decision is kept and will not be lost.",
    adopt: "Take this version", adopt_reject: "Confirm reject", none: "(none)", edited: "(edited answer)",
    settled: "settled", via: "via", empty: "No items match", decision_accept: "approve", decision_reject: "reject",
    signed_out: "Signed out, please sign in again",
  },
};

const $ = (id) => document.getElementById(id);
const S = { lang: localStorage.getItem("soaes.lang") || "zh", user: null, csrf: null, mode: "open", items: [],
            pos: 0, offset: 0, total: 0, item: null, editing: false, rejecting: false, busy: false, staleYours: null };
const PENDING_KEY = "soaes.pending";

function t(k) { return (T[S.lang] || T.zh)[k] || k; }
function el(tag, text, cls) { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  document.querySelectorAll("[data-t]").forEach((n) => { n.textContent = t(n.dataset.t); });
  $("lang").textContent = S.lang === "zh" ? "English" : "中文";
  $("login-hint").textContent = S.mode === "token" ? t("token_hint") : t("name_hint");
  renderOverview();
  if (S.item) renderItem();
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-Requested-With"] = "soaes-review";
    if (S.csrf) headers["X-CSRF-Token"] = S.csrf;
  }
  const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { status: r.status, data };
}

function banner(text, bad) {
  const b = $("banner");
  b.hidden = !text; b.textContent = text || ""; b.className = bad ? "bad" : "";
}

// ---- session ------------------------------------------------------------------------------------
async function start() {
  $("lang").onclick = () => { S.lang = S.lang === "zh" ? "en" : "zh"; localStorage.setItem("soaes.lang", S.lang); applyLang(); };
  $("logout").onclick = async () => { await api("POST", "/api/logout", {}); location.reload(); };
  $("login-form").onsubmit = login;
  const s = await retrying(() => api("GET", "/api/session"));
  S.mode = s.data.mode; S.csrf = s.data.csrf; S.user = s.data.user;
  applyLang();
  if (!S.user) { showLogin(); return; }
  await enter();
}

function showLogin() {
  $("app").hidden = true; $("login").hidden = false; $("logout").hidden = true;
  $("login-input").type = S.mode === "token" ? "password" : "text";
  $("login-input").focus();
}

async function login(ev) {
  ev.preventDefault();
  const v = $("login-input").value.trim();
  const r = await api("POST", "/api/login", S.mode === "token" ? { token: v } : { name: v });
  if (r.status !== 200) { $("login-error").textContent = (r.data && r.data.message) || String(r.status); return; }
  S.user = r.data.user; S.csrf = r.data.csrf;
  await enter();
}

async function enter() {
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("whoami").textContent = S.user.name + (S.user.role === "lead" ? " · lead" : "");
  ["f-status", "f-doc", "f-annotator"].forEach((id) => { $(id).onchange = () => loadList(0, null, 0); });
  wireButtons();
  document.addEventListener("keydown", onKey);
  await flushPending();
  await loadOverview(true);
  ["f-doc", "f-annotator"].forEach((id) => { $(id).onfocus = () => loadOverview(true); });
  await loadList(0, null, 0);
}

// ---- list, overview -----------------------------------------------------------------------------
async function loadOverview(full) {
  const r = await retrying(() => api("GET", "/api/overview" + (full ? "?full=1" : "")));
  if (r.status !== 200) return;
  if (!full && S.overview) { r.data.documents = S.overview.documents; r.data.annotators = S.overview.annotators; }
  S.overview = r.data;
  renderOverview();
}

function renderOverview() {
  const o = S.overview; if (!o) return;
  const c = o.counts;
  const done = c.total - c.pending;
  $("progress-bar").style.width = (c.total ? (100 * done / c.total) : 0).toFixed(1) + "%";
  $("progress-text").textContent = `${t("reviewed")} ${done}${t("of")}${c.total} · ${t("me")} ${o.reviewed_by_me}`;
  const counts = $("counts"); clear(counts);
  for (const k of ["pending", "approved", "rejected", "conflict"]) {
    const s = el("span", `${t("s_" + k)} ${c[k]}`); s.id = "count-" + k; counts.appendChild(s);
  }
  fillSelect($("f-doc"), o.documents.map((d) => [d.doc_group, `${d.title || d.doc_group} (${d.items})`]));
  fillSelect($("f-annotator"), o.annotators.map((a) => [a.annotator, `${a.annotator} (${a.items})`]));
}

function fillSelect(sel, options) {
  const keep = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const [v, label] of options) { const o = el("option", label); o.value = v; sel.appendChild(o); }
  sel.value = keep;
}

const PAGE = 100;

async function loadList(pos, keepId, offset) {
  // one page of the filtered list; j/k past its ends load the next/previous page
  if (offset == null) offset = S.offset;
  const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  if ($("f-status").value) q.set("status", $("f-status").value);
  if ($("f-doc").value) q.set("doc", $("f-doc").value);
  if ($("f-annotator").value) q.set("annotator", $("f-annotator").value);
  const r = await retrying(() => api("GET", "/api/items?" + q.toString()));
  if (r.status === 401) return signedOut();
  if (!r.data.items.length && offset > 0) return loadList(0, null, Math.max(0, offset - PAGE));
  S.items = r.data.items; S.total = r.data.total; S.offset = r.data.offset;
  if (keepId) { const i = S.items.findIndex((x) => x.item_id === keepId); if (i >= 0) pos = i; }
  renderList();
  await show(Math.min(pos, Math.max(0, S.items.length - 1)));
}

function renderList() {
  const ol = $("list"); clear(ol);
  if (!S.items.length) { ol.appendChild(el("li", t("empty"))); return; }
  S.items.forEach((it, i) => {
    const li = el("li", it.question, "st-" + it.status);
    li.title = it.title; li.dataset.id = it.item_id;
    li.onclick = () => go(i);
    ol.appendChild(li);
  });
}

async function go(pos) {
  if (pos >= S.items.length && S.offset + S.items.length < S.total) return loadList(0, null, S.offset + PAGE);
  if (pos < 0 && S.offset > 0) return loadList(PAGE - 1, null, Math.max(0, S.offset - PAGE));
  return show(pos);
}

async function show(pos) {
  if (!S.items.length) { S.item = null; $("question").textContent = ""; $("answer").value = ""; clear($("passage")); return; }
  S.pos = Math.max(0, Math.min(pos, S.items.length - 1));
  const id = S.items[S.pos].item_id;
  const r = await retrying(() => api("GET", "/api/items/" + encodeURIComponent(id)));
  if (r.status === 401) return signedOut();
  if (r.status !== 200) return;
  S.item = r.data; S.editing = false; S.rejecting = false; S.staleYours = null;
  $("stale").hidden = true;
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();  // keys work again
  renderItem();
  document.querySelectorAll("#list li").forEach((li, i) => li.classList.toggle("current", i === S.pos));
  const cur = document.querySelector("#list li.current"); if (cur) cur.scrollIntoView({ block: "nearest" });
}

// ---- one item -----------------------------------------------------------------------------------
function renderItem() {
  const it = S.item; if (!it) return;
  $("doc-title").textContent = it.title || it.doc_id;
  const p = $("passage"); clear(p);
  for (const seg of it.passage) {
    if (seg.hl) { const m = el("mark", seg.text); p.appendChild(m); } else p.appendChild(document.createTextNode(seg.text));
  }
  const mark = p.querySelector("mark"); if (mark) mark.scrollIntoView({ block: "center" });
  $("item-pos").textContent = `${S.offset + S.pos + 1} / ${S.total}`;
  const st = $("item-status"); st.textContent = t("s_" + it.status); st.className = "badge st-" + it.status;
  $("item-id").textContent = it.item_id;
  $("question").textContent = it.question;
  const a = $("answer");
  a.value = (it.mine && it.mine.edited_answer) || it.final_answer || it.answer;
  a.readOnly = !S.editing; a.classList.toggle("editing", S.editing);
  $("edit-hint").hidden = !S.editing;
  $("reason-box").hidden = !S.rejecting;
  const h = $("history"); clear(h);
  if (!it.decisions.length) h.appendChild(el("li", t("none")));
  for (const d of it.decisions) {
    let s = `${d.decided_at.replace("T", " ").slice(0, 19)} ${d.annotator} ${t("via")} ${d.channel}: ${t("decision_" + d.decision)}`;
    if (d.resolves_conflict) s += ` (${t("settled")})`;
    if (d.edited_answer) s += " " + t("edited");
    if (d.comment) s += ` — ${d.comment}`;
    h.appendChild(el("li", s));
  }
  renderConflict();
}

function versionBox(title, d, extra) {
  const box = el("div", null, "version");
  box.appendChild(el("h4", title));
  const body = el("div", null, "v-body");
  body.appendChild(el("div", t("decision_" + d.decision) + (d.comment ? ` — ${d.comment}` : "")));
  if (d.decision === "accept") body.appendChild(el("div", d.edited_answer || (S.item && S.item.answer) || ""));
  box.appendChild(body);
  if (extra) box.appendChild(extra);
  return box;
}

function renderConflict() {
  const it = S.item;
  const box = $("conflict"); const vs = $("conflict-versions"); clear(vs);
  box.hidden = it.status !== "conflict";
  if (box.hidden) return;
  it.disagreeing.forEach((d, i) => {
    let btn = null;
    if (S.user.role === "lead") {
      btn = el("button", d.decision === "accept" ? t("adopt") : t("adopt_reject"));
      btn.type = "button"; btn.className = "adopt"; btn.dataset.annotator = d.annotator;
      btn.onclick = () => submit(d.decision, d.decision === "accept" ? (d.edited_answer || it.answer) : null, d.comment, true);
    }
    const b = versionBox(d.annotator, d, btn); b.id = "conflict-v" + i; vs.appendChild(b);
  });
}

function setEditing(on) {
  S.editing = on; S.rejecting = false;
  const a = $("answer"); a.readOnly = !on; a.classList.toggle("editing", on);
  $("edit-hint").hidden = !on; $("reason-box").hidden = true;
  if (on) { a.focus(); a.setSelectionRange(a.value.length, a.value.length); }
}

function setRejecting(on) {
  S.rejecting = on; S.editing = false;
  $("answer").readOnly = true; $("answer").classList.remove("editing"); $("edit-hint").hidden = true;
  $("reason-box").hidden = !on;
  if (on) { $("reason").value = ""; $("reason").focus(); }
}

function wireButtons() {
  $("btn-approve").onclick = () => approve();
  $("btn-edit").onclick = () => setEditing(true);
  $("btn-reject").onclick = () => (S.rejecting ? rejectNow() : setRejecting(true));
  $("btn-prev").onclick = () => go(S.pos - 1);
  $("btn-next").onclick = () => go(S.pos + 1);
  $("stale-keep").onclick = () => { const y = S.staleYours; if (y) submit(y.decision, y.edited_answer, y.comment, y.resolve, true); };
  $("stale-drop").onclick = () => go(S.pos);
}

function approve() {
  if (!S.item) return;
  const a = $("answer").value;
  submit("accept", a !== S.item.answer ? a : null, null, false);
}
function rejectNow() { submit("reject", null, $("reason").value.trim() || null, false); }

function onKey(ev) {
  if ($("app").hidden || !S.item) return;
  const ctrlEnter = ev.key === "Enter" && (ev.ctrlKey || ev.metaKey);
  if (ev.key === "Escape") { setEditing(false); setRejecting(false); ev.preventDefault(); return; }
  if (ctrlEnter) {
    ev.preventDefault();
    if (S.editing) approve(); else if (S.rejecting) rejectNow();
    return;
  }
  if (S.rejecting && ev.key === "Enter" && ev.target === $("reason")) { ev.preventDefault(); rejectNow(); return; }
  const tag = (ev.target.tagName || "").toLowerCase();
  const typing = (tag === "input" || tag === "textarea") && !ev.target.readOnly;
  if (typing || tag === "select" || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  const k = ev.key;
  if (k === "j") { ev.preventDefault(); go(S.pos + 1); }
  else if (k === "k") { ev.preventDefault(); go(S.pos - 1); }
  else if (k === "a") { ev.preventDefault(); approve(); }
  else if (k === "e") { ev.preventDefault(); setEditing(true); }
  else if (k === "r") { ev.preventDefault(); setRejecting(true); }
}

// ---- saving: acknowledged or retried, never dropped ------------------------------------------------
function pendingList() { try { return JSON.parse(localStorage.getItem(PENDING_KEY) || "[]"); } catch (e) { return []; } }
function setPending(list) { localStorage.setItem(PENDING_KEY, JSON.stringify(list)); }

async function submit(decision, answer, reason, resolve, force) {
  if (S.busy || !S.item) return;
  S.busy = true;
  const it = S.item;
  const version = it.version;  // after a stale save, S.item is the current version
  const action = { id: it.item_id, decision, answer, reason, resolve: !!resolve, version, user: S.user.name };
  setPending(pendingList().concat([action]));
  $("save-state").textContent = t("saving");
  try {
    const r = await send(action);
    if (r.status === 409) { showStale(r.data, action); return; }
    $("save-state").textContent = t("saved");
    await loadOverview();
    // next: the item after this one (a status filter may drop the saved item from the list)
    const idx = S.pos, next = S.items[idx + 1];
    if (next) await loadList(idx + 1, next.item_id);
    else {  // the page's last item: reload the page; if the saved item is still there, move on past it
      await loadList(idx, null);
      if (S.items[idx] && S.items[idx].item_id === it.item_id) await go(idx + 1);
    }
  } finally { S.busy = false; }
}

async function send(action) {
  const path = `/api/items/${encodeURIComponent(action.id)}/${action.resolve ? "resolve" : "decision"}`;
  const body = { decision: action.decision, answer: action.answer, reason: action.reason, version: action.version };
  const r = await retrying(() => api("POST", path, body));
  // acknowledged (saved, refused as stale, or rejected as invalid): no longer pending
  setPending(pendingList().filter((p) => !(p.id === action.id && p.version === action.version && p.decision === action.decision)));
  if (r.status === 401) signedOut();
  return r;
}

async function flushPending() {
  for (const action of pendingList()) {
    if (action.user !== S.user.name) continue;
    await send(action);
  }
}

function showStale(data, action) {
  S.item = data.current;
  S.staleYours = { decision: action.decision, edited_answer: action.answer, comment: action.reason, resolve: action.resolve };
  renderItem();
  const theirs = data.current.decisions.length ? data.current.decisions[data.current.decisions.length - 1] : { decision: "accept" };
  const tb = $("stale-theirs").querySelector(".v-body"); clear(tb);
  tb.appendChild(el("div", `${theirs.annotator || ""}: ${t("decision_" + theirs.decision)}`));
  tb.appendChild(el("div", data.current.final_answer || (theirs.edited_answer || data.current.answer)));
  const yb = $("stale-yours").querySelector(".v-body"); clear(yb);
  yb.appendChild(el("div", `${action.user}: ${t("decision_" + action.decision)}${action.reason ? " — " + action.reason : ""}`));
  yb.appendChild(el("div", action.answer || data.current.answer));
  $("stale").hidden = false;
  $("save-state").textContent = "";
}

async function retrying(fn) {
  // network errors and a server that is restarting: wait and try again, telling the annotator
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fn();
      if (r.status === 502 || r.status === 503 || r.status === 504) throw new Error("unavailable");
      if (attempt) banner("");
      return r;
    } catch (e) {
      banner(t("offline"), true);
      await new Promise((res) => setTimeout(res, Math.min(2000, 250 * (attempt + 1))));
    }
  }
}

function signedOut() { banner(t("signed_out"), true); S.user = null; showLogin(); }

document.addEventListener("DOMContentLoaded", start);
