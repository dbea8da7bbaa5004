// A small stand-in for the Glide APIs that rsbridge's generated instance scripts use, to
// run them in Node: GlideRecord (read and insert through the simulated instance's Table
// API, as the admin: the stand-in does not apply the clicking user's ACLs),
// sn_ws.RESTMessageV2 (built from the stored REST message records, executed as a REAL
// synchronous HTTP call by a child process), gs, GlideDateTime, GlideStringUtil, Class,
// current, action, response (UI pages), and data/input/$sp (widget server scripts).
// Client mode (UI actions with Client set): g_form, g_navigation, a GlideModal recorder and
// GlideAjax, which runs the client-callable Script Include's method in this process with
// the params (the instance runs it server-side as the clicking user).
//
// Usage: node glide_standin.js WORLD.json. WORLD holds what the instance holds (REST
// messages, properties, Script Includes), who clicks (user), the time, what to run
// (mode: "script", "condition", "widget" or "client": clicks, JavaScript run one after
// the other, each followed by the GlideAjax answers it asked for) and on which record
// (current). Prints {info, errors, redirect, requests, result, data, dialogs} as JSON.
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { execFileSync } = require('child_process');

const world = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {
  info: [], errors: [], redirect: null, requests: [], result: null, data: null, dialogs: [],
};

function httpSync(request) {
  const raw = execFileSync(process.execPath, [path.join(__dirname, 'http_once.js')], {
    input: JSON.stringify(request),
    timeout: request.timeout_ms + 5000,
  });
  return JSON.parse(raw.toString('utf8'));
}

function tableApi(pathAndQuery) {
  const auth = Buffer.from(world.instance.user + ':' + world.instance.password).toString('base64');
  const answer = httpSync({
    method: 'GET',
    url: world.instance.url + '/api/now/table/' + pathAndQuery,
    headers: { Authorization: 'Basic ' + auth, Accept: 'application/json' },
    body: null,
    timeout_ms: 30000,
  });
  if (answer.status === 404) return null;
  if (answer.status !== 200) {
    throw new Error('Table API ' + pathAndQuery + ': HTTP ' + answer.status + ' ' + answer.body);
  }
  return JSON.parse(answer.body).result;
}

// A field of a record, as GlideElement behaves in conditions and concatenation.
function element(value) {
  const text = value === undefined || value === null ? '' : String(value);
  return {
    toString: () => text,
    valueOf: () => (text === 'true' ? true : text === 'false' ? false : text),
    nil: () => text === '',
    getDisplayValue: () => text,
  };
}

class GlideRecordImpl {
  constructor(table) {
    this._table = table;
    this._conditions = [];
    this._order = [];
    this._limit = 0;
    this._rows = [];
    this._index = -1;
    this._row = null;
  }
  addQuery(field, op, value) {
    if (value === undefined) {
      value = op;
      op = '=';
    }
    this._conditions.push(field + op + String(value));
  }
  orderBy(field) { this._order.push('ORDERBY' + field); }
  orderByDesc(field) { this._order.push('ORDERBYDESC' + field); }
  setLimit(limit) { this._limit = limit; }
  query() {
    const params = new URLSearchParams({
      sysparm_query: this._conditions.concat(this._order).join('^'),
      sysparm_exclude_reference_link: 'true',
    });
    if (this._limit) params.set('sysparm_limit', String(this._limit));
    this._rows = tableApi(this._table + '?' + params.toString()) || [];
    this._index = -1;
  }
  next() {
    this._index += 1;
    this._row = this._index < this._rows.length ? this._rows[this._index] : null;
    return this._row !== null;
  }
  get(sysId) {
    const row = tableApi(this._table + '/' + encodeURIComponent(sysId) +
      '?sysparm_exclude_reference_link=true');
    this._row = row;
    return row !== null;
  }
  isValidRecord() { return this._row !== null; }
  isValid() {
    try {
      tableApi(this._table + '?sysparm_limit=1');
      return true;
    } catch (e) {
      return false;
    }
  }
  initialize() { this._row = {}; }
  setValue(field, value) { this._row[field] = String(value); }
  insert() {
    const auth = Buffer.from(world.instance.user + ':' + world.instance.password).toString('base64');
    const answer = httpSync({
      method: 'POST',
      url: world.instance.url + '/api/now/table/' + this._table,
      headers: { Authorization: 'Basic ' + auth, Accept: 'application/json',
        'Content-Type': 'application/json' },
      body: JSON.stringify(this._row),
      timeout_ms: 30000,
    });
    if (answer.status !== 201) throw new Error('insert into ' + this._table + ': ' + answer.body);
    this._row = JSON.parse(answer.body).result;
    return this._row.sys_id;
  }
  getValue(field) { return this._row && this._row[field] !== undefined ? String(this._row[field]) : null; }
  getUniqueValue() { return this.getValue('sys_id'); }
  getTableName() { return this._table; }
  getRecordClassName() { return this.getValue('sys_class_name') || this._table; }
}

// GlideRecord: fields read as properties (current.active, current.caller_id ...).
function GlideRecord(table) {
  const record = new GlideRecordImpl(table);
  return new Proxy(record, {
    get(target, prop) {
      if (typeof prop !== 'string' || prop in target) return target[prop];
      if (prop.startsWith('_')) return undefined;
      return element(target._row ? target._row[prop] : '');
    },
  });
}

function substitute(text, variables) {
  return String(text).replace(/\$\{(\w+)\}/g, (all, name) =>
    Object.prototype.hasOwnProperty.call(variables, name) ? variables[name] : all);
}

function xmlEscape(value) {
  return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

class RESTMessageV2 {
  constructor(name, method) {
    const message = world.rest_messages[name];
    if (!message || !message[method]) {
      throw new Error('REST message ' + name + ' has no HTTP method ' + method);
    }
    this._method = message[method];
    this._variables = {};
    this._headers = {};
    this._body = null;
    this._timeout = 60000;
  }
  setStringParameterNoEscape(name, value) { this._variables[name] = String(value); }
  setStringParameter(name, value) { this._variables[name] = xmlEscape(value); }
  setRequestBody(body) { this._body = String(body); }
  setRequestHeader(name, value) { this._headers[name] = String(value); }
  setHttpTimeout(ms) { this._timeout = ms; }
  execute() {
    const headers = {};
    for (const [name, value] of Object.entries(this._method.headers)) {
      headers[name] = substitute(value, this._variables);
    }
    Object.assign(headers, this._headers);
    const httpMethod = this._method.http_method.toUpperCase();
    let body = this._body !== null ? this._body : substitute(this._method.content, this._variables);
    if (httpMethod === 'GET') body = null;
    const request = {
      method: httpMethod,
      url: substitute(this._method.endpoint, this._variables),
      headers,
      body,
      timeout_ms: this._timeout,
    };
    out.requests.push(request);
    const answer = httpSync(request);
    return {
      getStatusCode: () => answer.status,
      getBody: () => answer.body,
      haveError: () => answer.status === 0 || answer.status >= 400,
      getErrorMessage: () => answer.error || (answer.status >= 400 ? 'HTTP ' + answer.status : ''),
    };
  }
}

const user = world.user;
const gs = {
  getProperty: (name, fallback) =>
    Object.prototype.hasOwnProperty.call(world.properties, name) ? world.properties[name] : fallback,
  getUserName: () => user.user_name,
  getUserID: () => user.sys_id,
  getUser: () => ({ getEmail: () => user.email, getID: () => user.sys_id, getName: () => user.user_name }),
  hasRole: (role) => user.roles.includes(role) || user.roles.includes('admin'),
  addInfoMessage: (message) => out.info.push(String(message)),
  addErrorMessage: (message) => out.errors.push(String(message)),
  getMessage: (message) => String(message),
};

const sandbox = {
  gs,
  GlideRecord,
  GlideRecordSecure: GlideRecord,
  GlideDateTime: function GlideDateTime() { this.getNumericValue = () => world.now_ms; },
  GlideStringUtil: { escapeHTML: xmlEscape },
  Class: { create: () => function () { this.initialize.apply(this, arguments); } },
  sn_ws: { RESTMessageV2 },
  action: {
    setRedirectURL: (target) => {
      out.redirect = typeof target === 'string' ? target
        : target.getTableName() + '.do?sys_id=' + target.getUniqueValue();
    },
  },
  response: { sendRedirect: (url) => { out.redirect = String(url); } },
  $sp: { getParameter: (name) => (world.params || {})[name] || null },
  input: world.input || null,
  options: world.options || {},
  data: {},
};
// Client side: the GlideAjax answers wait until the click's script has run, as the
// browser's callbacks do.
const pendingAjax = [];
class GlideAjax {
  constructor(processor) { this._processor = processor; this._params = {}; }
  addParam(name, value) { this._params[name] = String(value); }
  getXMLAnswer(callback) {
    const params = Object.assign({}, this._params);
    const processor = this._processor;
    pendingAjax.push(() => {
      const include = context[processor];
      if (!include || !include.prototype.getParameter) {
        throw new Error(processor + ' is not a client-callable Script Include');
      }
      const handler = new include();
      const method = params.sysparm_name;
      if (typeof handler[method] !== 'function' || method.startsWith('_')) {
        throw new Error(processor + ' has no method ' + method);
      }
      handler._params = params;
      const answer = handler[method]();
      callback(answer === undefined || answer === null ? null : String(answer));
    });
  }
}
function AbstractAjaxProcessor() {}
AbstractAjaxProcessor.prototype = {
  initialize() {},
  getParameter(name) { return Object.prototype.hasOwnProperty.call(this._params, name) ? this._params[name] : null; },
};
class GlideModal {
  constructor(id, readOnly, width) {
    this._dialog = { id: String(id), read_only: Boolean(readOnly), width, title: '', html: [], closed: false };
    out.dialogs.push(this._dialog);
  }
  setTitle(title) { this._dialog.title = String(title); }
  setWidth(width) { this._dialog.width = width; }
  renderWithContent(html) { this._dialog.html.push(String(html)); }
  destroy() { this._dialog.closed = true; }
}
if (world.mode === 'client') {
  Object.assign(sandbox, {
    GlideAjax,
    GlideModal,
    g_form: {
      getUniqueValue: () => world.current.sys_id,
      getTableName: () => world.current.table,
      addInfoMessage: (message) => out.info.push(String(message)),
      addErrorMessage: (message) => out.errors.push(String(message)),
    },
    g_navigation: { open: (url) => { out.redirect = String(url); } },
  });
} else if (world.current) {
  const current = GlideRecord(world.current.table);
  if (!current.get(world.current.sys_id)) throw new Error('no such current record');
  sandbox.current = current;
}
// Script Includes load on every side: a client-callable one extends this.
sandbox.AbstractAjaxProcessor = AbstractAjaxProcessor;
const context = vm.createContext(sandbox);
// Object.extendsObject as the instance defines it for Script Includes.
vm.runInContext('Object.extendsObject = function (base, props) {' +
  ' var proto = Object.create(base.prototype);' +
  ' for (var k in props) proto[k] = props[k]; return proto; };', context);
for (const include of world.script_includes) vm.runInContext(include, context);
if (world.mode === 'client') {
  vm.runInContext(world.script, context);
  for (const click of world.clicks) {
    vm.runInContext(click, context);
    while (pendingAjax.length) pendingAjax.shift()();
  }
} else if (world.mode === 'condition') {
  out.result = Boolean(vm.runInContext('(' + world.script + ')', context));
} else {
  vm.runInContext(world.script, context);
  if (world.mode === 'widget') out.data = JSON.parse(JSON.stringify(context.data));
}
process.stdout.write(JSON.stringify(out));
