/* Chunked uploads (Models and Reference RDM views): the file goes to the upload route in 8 MiB fetch()
   requests (dcc.Upload would hold it base64-encoded in memory), with a progress bar. */
(function () {
  // Dash has no <input type=file>: put one into every .file-slot the page renders.
  function fillSlots() {
    document.querySelectorAll('.file-slot').forEach(function (slot) {
      if (!slot.querySelector('input[type=file]')) {
        const input = document.createElement('input');
        input.type = 'file';
        input.accept = slot.dataset.accept || '';
        slot.appendChild(input);
      }
    });
  }
  new MutationObserver(fillSlots).observe(document.documentElement, {childList: true, subtree: true});

  function routeBase() {
    const config = document.getElementById('_dash-config');
    return ((config && JSON.parse(config.textContent).requests_pathname_prefix) || '/') + 'upload/';
  }

  async function post(url, body, type) {
    const response = await fetch(url, {method: 'POST', body: body, credentials: 'same-origin',
                                       headers: {'Content-Type': type}});
    try {
      return await response.json();
    } catch (error) {
      return {ok: false, error: 'the server answered ' + response.status + ' ' + response.statusText};
    }
  }

  function chosenFile(slot) {
    const input = document.querySelector('#' + slot + ' input[type=file]');
    return input && input.files[0];
  }

  // The form's element ids start with `id` (dashboard.views.models.file_form's prefix); the file
  // comes from the slot `<id>-file`, or from `slot` when given.
  async function upload(kind, fields, id, slot) {
    const file = chosenFile(slot || id + '-file');
    if (!file) return {ok: false, error: 'choose a file first'};
    const show = function (fraction, text) {
      dash_clientside.set_props(id + '-progress', {value: String(fraction)});
      dash_clientside.set_props(id + '-progress-text', {children: text});
    };
    const base = routeBase();
    const start = await post(base + 'start', null, 'application/octet-stream');
    if (!start.ok) return start;
    if (file.size > start.max_bytes) {
      return {ok: false, error: file.name + ' is larger than the ' + start.max_size + ' limit of an upload'};
    }
    for (let index = 0; index * start.chunk_bytes < file.size; index++) {
      const piece = file.slice(index * start.chunk_bytes, (index + 1) * start.chunk_bytes);
      const answer = await post(base + start.upload_id + '/' + index, piece, 'application/octet-stream');
      if (!answer.ok) { show(0, ''); return answer; }
      show(answer.received / file.size, Math.round(100 * answer.received / file.size) + ' % sent');
    }
    show(1, 'checking…');
    const result = await post(base + start.upload_id + '/finish',
                              JSON.stringify(Object.assign({filename: file.name, kind: kind}, fields)),
                              'application/json');
    show(result.ok ? 1 : 0, '');
    return result;
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.repscope = {
    // With a second file (initial weights), that file follows as the new model's untrained twin.
    uploadCheckpoint: async function (clicks, architecture, numClasses, stimulusSet, name) {
      const fields = {architecture: architecture, num_classes: numClasses, stimulus_set: stimulusSet};
      const result = await upload('checkpoint', Object.assign({name: name || null}, fields), 'models-checkpoint');
      if (!result.ok || !chosenFile('models-checkpoint-twin-file')) return result;
      result.twin = await upload('checkpoint', Object.assign({name: result.model + '-init', twin_of: result.model},
                                                             fields), 'models-checkpoint', 'models-checkpoint-twin-file');
      return result;
    },
    uploadStimuli: function (clicks) {
      return upload('stimuli', {}, 'models-stimuli');
    },
    uploadOnnx: function (clicks, stimulusSet, name, size, mean, std, channels) {
      return upload('onnx', {stimulus_set: stimulusSet, name: name || null, size: size || null, mean: mean || null,
                             std: std || null, channels: channels || null}, 'models-onnx');
    },
    uploadReference: function (clicks, selection, name) {
      return upload('reference', {stimulus_set: (selection && selection.set) || 'digits', name: name || null},
                    'reference-upload');
    },
    uploadActivations: function (clicks, stimulusSet, name, flags, series, step) {
      flags = flags || [];
      // The step goes as text: the server reads a whole number from it (0 included).
      const known = step !== null && step !== undefined && step !== '';
      return upload('activations', {stimulus_set: stimulusSet, name: name || null, brain: flags.includes('brain'),
                                    repeated: flags.includes('repeated'), series: series || null,
                                    step: known ? String(step) : null}, 'models-activations');
    },
  };
})();
