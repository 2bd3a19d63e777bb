// interplab model explorer: plain JavaScript, no libraries, no network.
window.interplabExplorer = window.interplabExplorer || function (rootId) {
  var root = document.getElementById(rootId);
  var data = JSON.parse(document.getElementById(rootId + "-data").textContent);
  var state = { token: data.tokens.length - 1, layer: 0, neuron: data.neuron_order.length ? data.neuron_order[0] : null };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function shade(w, rgb) { return "rgba(" + rgb + "," + Math.max(0, Math.min(1, w)).toFixed(3) + ")"; }
  function signed(v, scale) {
    var w = scale > 0 ? v / scale : 0;
    return w >= 0 ? shade(w, "31,119,180") : shade(-w, "214,39,40");
  }

  root.appendChild(el("h4", null, "Model explorer: " + data.model));
  root.appendChild(el("div", "ipl-note", "Click a token. " + data.n_layers + " layers x " + data.n_heads + " heads, " + data.tokens.length + " tokens."));
  var strip = el("div", "ipl-tokens ipl-input");
  data.tokens.forEach(function (t, i) {
    var s = el("span", "ipl-tok", t);
    s.setAttribute("data-i", i);
    s.addEventListener("click", function () { state.token = i; update(); });
    strip.appendChild(s);
  });
  root.appendChild(strip);

  // Attention
  root.appendChild(el("h4", null, "Attention"));
  var ctl = el("div", "ipl-note", "Layer");
  var layerSel = el("select", "ipl-layer");
  for (var l = 0; l < data.n_layers; l++) { var o = el("option", null, String(l)); o.value = l; layerSel.appendChild(o); }
  layerSel.addEventListener("change", function () { state.layer = +layerSel.value; update(); });
  ctl.appendChild(layerSel);
  root.appendChild(ctl);
  var attnTitle = el("div", "ipl-note ipl-attn-title");
  root.appendChild(attnTitle);
  var attnTable = el("table", "ipl-attn");
  root.appendChild(attnTable);

  // Logit lens
  var lensTable = null, lensTitle = null;
  if (data.lens) {
    root.appendChild(el("h4", null, "Logit lens"));
    lensTitle = el("div", "ipl-note ipl-lens-title");
    root.appendChild(lensTitle);
    lensTable = el("table", "ipl-lens");
    root.appendChild(lensTable);
  }

  // Neurons
  var neuronStrip = null, neuronExamples = null, neuronSel = null;
  if (data.neuron_order.length) {
    root.appendChild(el("h4", null, "MLP neuron"));
    var nctl = el("div", "ipl-note", "Neuron (layer.index)");
    neuronSel = el("select", "ipl-neuron");
    data.neuron_order.forEach(function (k) { var o = el("option", null, k); o.value = k; neuronSel.appendChild(o); });
    neuronSel.addEventListener("change", function () { state.neuron = neuronSel.value; update(); });
    nctl.appendChild(neuronSel);
    root.appendChild(nctl);
    neuronStrip = el("div", "ipl-tokens ipl-neuron-acts");
    root.appendChild(neuronStrip);
    root.appendChild(el("div", "ipl-note", "Examples that excite it most (blue: positive, red: negative activation)"));
    neuronExamples = el("div", "ipl-examples");
    root.appendChild(neuronExamples);
  }

  function update() {
    Array.prototype.forEach.call(strip.children, function (s, i) { s.classList.toggle("ipl-selected", i === state.token); });
    var tok = data.tokens[state.token];
    attnTitle.textContent = "From token " + state.token + " \u201c" + tok + "\u201d in layer " + state.layer + ": one row per head, darker = more attention";
    attnTable.innerHTML = "";
    var head = el("tr");
    head.appendChild(el("th", null, "head"));
    data.tokens.forEach(function (t) { head.appendChild(el("th", null, t)); });
    attnTable.appendChild(head);
    var A = data.attn[state.layer];
    for (var h = 0; h < data.n_heads; h++) {
      var tr = el("tr");
      tr.appendChild(el("th", null, String(h)));
      A[h][state.token].forEach(function (w, j) {
        var td = el("td", "ipl-w", w.toFixed(2));
        td.style.background = shade(w, "31,119,180");
        td.title = "head " + h + ": " + tok + " \u2192 " + data.tokens[j] + " = " + w.toFixed(3);
        tr.appendChild(td);
      });
      attnTable.appendChild(tr);
    }
    if (lensTable) {
      lensTitle.textContent = "Top next-token predictions at position " + state.token + " \u201c" + tok + "\u201d, read off the residual stream";
      lensTable.innerHTML = "";
      var hr = el("tr"); hr.appendChild(el("th", null, "after"));
      for (var k = 0; k < data.lens[0][0].length; k++) hr.appendChild(el("th", null, "#" + (k + 1)));
      lensTable.appendChild(hr);
      data.lens.forEach(function (layerPreds, li) {
        var r = el("tr");
        r.appendChild(el("th", null, li === 0 ? "embed" : "layer " + (li - 1)));
        layerPreds[state.token].forEach(function (pair) {
          var td = el("td", null, pair[0] + " " + (100 * pair[1]).toFixed(1) + "%");
          td.style.background = shade(pair[1], "44,160,44");
          r.appendChild(td);
        });
        lensTable.appendChild(r);
      });
    }
    if (neuronStrip && state.neuron) {
      var nd = data.neurons[state.neuron];
      var scale = Math.max.apply(null, nd.acts.map(Math.abs).concat(nd.examples.map(function (e) { return Math.abs(e.max); })).concat([1e-6]));
      neuronStrip.innerHTML = "";
      nd.acts.forEach(function (a, i) {
        var s = el("span", "ipl-plain", data.tokens[i]);
        s.style.background = signed(a, scale);
        s.title = "activation " + a.toFixed(3);
        neuronStrip.appendChild(s);
      });
      neuronExamples.innerHTML = "";
      if (!nd.examples.length) neuronExamples.appendChild(el("div", "ipl-note", "(no dataset examples given: pass examples=[...])"));
      nd.examples.forEach(function (ex) {
        var row = el("div", "ipl-example");
        row.appendChild(el("span", "ipl-max", "max " + ex.max.toFixed(2)));
        ex.tokens.forEach(function (t, i) {
          var s = el("span", "ipl-plain", t);
          s.style.background = signed(ex.acts[i], scale);
          s.title = "activation " + ex.acts[i].toFixed(3);
          row.appendChild(s);
        });
        neuronExamples.appendChild(row);
      });
    }
  }
  update();
};
