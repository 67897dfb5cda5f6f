// The overview dashboard's panels, drawn safely. Served right after datasette-dashboards'
// own dashboards.js, in the same response (see dashboards.py): a later function declaration
// of a script replaces an earlier one, so renderChart() calls these renderers instead.
//
// What they change: every value from the database is set as text (textContent), never as
// HTML (datasette-dashboards 0.8 uses innerHTML: a run name holding <img onerror=...> ran
// script); a panel with no rows says so (the chart's `empty`, else "none") instead of
// throwing; a query that fails says why in the panel; Vega-Lite specs are v6 (the bundled
// Vega-Lite's), drawn as SVG, fitted to the panel's width.

function orchestratorNote(element, text, kind) {
  const note = document.createElement('p')
  note.className = `orchestrator-panel-note orchestrator-panel-${kind}`
  note.textContent = text
  note.style.margin = '0.5rem 0'
  note.style.color = kind === 'error' ? '#b00020' : '#666'
  element.appendChild(note)
}

// The panel's rows, or null once the panel says there are none or why they failed.
async function orchestratorRows(chart_slug, chart, query_string, absolute_url) {
  const element = document.querySelector(`#chart-${chart_slug}`)
  let data
  try {
    const response = await fetch(getDataUrl(chart, query_string, absolute_url))
    data = await response.json()
    if (!response.ok || data.ok === false || !Array.isArray(data.rows)) {
      throw new Error(data.error || `${response.status} ${response.statusText}`)
    }
  } catch (error) {
    orchestratorNote(element, `Could not load this panel: ${error.message}`, 'error')
    return null
  }
  if (data.truncated) {
    enableChartTooltip(chart_slug)
  }
  if (data.rows.length === 0) {
    orchestratorNote(element, chart.empty || 'none', 'empty')
    return null
  }
  return data
}

function orchestratorText(value) {
  return value === null || value === undefined ? '' : String(value)
}

async function renderVegaLiteChart(chart_slug, chart, query_string, absolute_url, full_height) {
  const data = await orchestratorRows(chart_slug, chart, query_string, absolute_url)
  if (data === null) {
    return
  }
  const display = chart.display || {}
  const y = (display.encoding || {}).y || {}
  // A discrete y axis gets a height in pixels, a step per category: given as a step,
  // Vega-Lite warns that it cannot fit the height as well as the width.
  const discreteY = ['nominal', 'ordinal'].includes(y.type)
  const categories = discreteY ? new Set(data.rows.map(row => row[y.field])).size : 0
  const height = discreteY ? 22 * categories : full_height ? 'container' : undefined
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: chart.title,
    width: 'container',
    ...(height === undefined ? {} : { height }),
    autosize: { type: height === 'container' ? 'fit' : 'fit-x', contains: 'padding' },
    view: { stroke: null },
    config: {
      background: '#00000000',
      arc: { innerRadius: 50 },
      line: { point: true },
    },
    data: { values: data.rows },
    ...display,
  }
  const element = document.querySelector(`#chart-${chart_slug}`)
  // Tooltips are escaped by vega-embed's default handler (sanitize).
  await vegaEmbed(element, spec, { renderer: 'svg' })
}

async function renderMetricChart(chart_slug, chart, query_string, absolute_url, full_height) {
  const data = await orchestratorRows(chart_slug, chart, query_string, absolute_url)
  if (data === null) {
    return
  }
  const display = chart.display || {}
  const metric = data.rows[0][display.field]
  const p = document.createElement('p')
  p.textContent = `${display.prefix || ''}${orchestratorText(metric)}${display.suffix || ''}`
  p.style.fontSize = '2.2rem'
  p.style.fontWeight = '900'

  const wrapper = document.createElement('div')
  wrapper.appendChild(p)
  Object.assign(wrapper.style, {
    width: '100%',
    height: '100%',
    display: 'flex',
    flexDirection: 'column',
    justifyContent: 'center',
    alignItems: 'center',
    overflow: 'hidden',
    whiteSpace: 'nowrap',
    textOverflow: 'ellipsis',
  })
  document.querySelector(`#chart-${chart_slug}`).appendChild(wrapper)
}

async function renderTableChart(chart_slug, chart, query_string, absolute_url, full_height) {
  const data = await orchestratorRows(chart_slug, chart, query_string, absolute_url)
  if (data === null) {
    return
  }
  const columns = data.columns || Object.keys(data.rows[0])
  const thead = document.createElement('thead')
  const headRow = document.createElement('tr')
  columns.forEach(column => {
    const th = document.createElement('th')
    th.textContent = column
    headRow.appendChild(th)
  })
  thead.appendChild(headRow)

  const tbody = document.createElement('tbody')
  data.rows.forEach(row => {
    const tr = document.createElement('tr')
    columns.forEach(column => {
      const td = document.createElement('td')
      td.textContent = orchestratorText(row[column])
      tr.appendChild(td)
    })
    tbody.appendChild(tr)
  })

  const table = document.createElement('table')
  table.appendChild(thead)
  table.appendChild(tbody)
  const wrapper = document.createElement('div')
  Object.assign(wrapper.style, { width: '100%', height: '100%', overflow: 'auto' })
  wrapper.appendChild(table)
  document.querySelector(`#chart-${chart_slug}`).appendChild(wrapper)
}
