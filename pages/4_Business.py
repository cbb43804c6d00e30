"""Business: what the API clients bring. Every client key with its limits, price and use; usage by
day and month; the income it implies; monthly statements; keys created, changed and revoked by
the owner (experts read)."""

from datetime import date

import streamlit as st

from app import business_views as views
from app.dashboard import (
    chart,
    expert_gate,
    is_owner,
    monthly_report_pdf,
    notice,
    services,
    shop,
    show_notice,
    through_navigation,
    who,
)
from diamond_model.enums import Scope
from diamond_model.reports.business_figures import stones_by_day
from diamond_model.reports.statement import statement_pdf
from diamond_model.serving.business import price_of, statement, usage_by
from diamond_model.serving.keys import ClientKeyError, KeyStore
from diamond_model.storage import audit

through_navigation()
st.set_page_config(page_title="Business", page_icon="💼", layout="wide")
st.title("Business")
st.caption("What the API clients bring: their keys, what they priced, and what it comes to.")
svc = services()
if not expert_gate(svc):
    st.info("Sign in to see the clients' business: it is the owner's and the experts' only.")
    st.stop()
show_notice()
keys = KeyStore(svc.store)
created = st.session_state.get("new_key")
if created:
    name, secret = created
    st.success(
        f"The key for '{name}' is below. Copy it now (the button at its right) and give it to "
        "the client: it is shown this once and cannot be read again."
    )
    st.code(secret, language=None)
    st.caption("Their first call, to price one stone:")
    st.code(views.first_call(svc.settings.api_url, secret), language="bash")
    if st.button("I have copied it", key="copied"):
        st.session_state.pop("new_key", None)
        st.rerun()

default = svc.settings.price_per_1000_stones
today = date.today()
svc.meter.flush()  # this process's own counts; the API servers flush theirs every few seconds

month = views.this_month(keys, default, today)
months = sorted({*usage_by(keys, "month")["month"], f"{today:%Y-%m}"}, reverse=True)
a, b, c, d = st.columns(4)
a.metric(f"Income in {month.label}", f"${month.income:,.2f}")
b.metric("Stones priced for clients", f"{month.stones:,}")
c.metric("Clients who used it", f"{month.clients_active}")
d.metric("Requests refused for a limit", f"{month.refused:,}")
st.caption(
    f"At each client's price per 1,000 stones (${default:,.2f} unless set for the client); "
    "days and months in UTC, as the servers count them. Failed and refused requests are not "
    "charged. Figures reach this page within a few seconds of the call."
)
if st.button("Refresh", key="refresh"):
    st.rerun()

listed = views.clients(keys, default, today)
if listed.empty:
    st.info("No client keys yet." + (" Create the first one below." if is_owner() else ""))
else:
    st.subheader("Clients")
    st.dataframe(listed, hide_index=True, width="stretch", key="clients")
    daily = usage_by(keys, "day")
    chart(stones_by_day(daily, today), key="stones_by_day")
    by_month, by_day = st.tabs(["By month", "By day"])
    with by_month:
        st.dataframe(views.usage_table(keys, default, "month"), hide_index=True, key="months")
    with by_day:
        st.dataframe(views.usage_table(keys, default, "day"), hide_index=True, key="days")

    st.subheader("Monthly statement")
    names = list(listed["Client"])
    left, right = st.columns(2)
    chosen = left.selectbox("Client", names, key="statement_client")
    period = right.selectbox("Month", months, key="statement_month")
    if chosen and period:
        sheet = statement(keys, chosen, period, default, today)
        st.write(
            f"**{sheet.client}, {sheet.month}**: {sheet.requests:,} requests, "
            f"{sheet.stones:,} stones at ${sheet.price_per_1000:,.2f} per 1,000 = "
            f"**${sheet.amount:,.2f}**."
        )
        one, two = st.columns(2)
        one.download_button(
            "Statement (CSV)",
            sheet.csv(),
            file_name=f"statement-{sheet.client}-{sheet.month}.csv",
            mime="text/csv",
            key="statement_csv",
        )
        two.download_button(
            "Statement (PDF)",
            statement_pdf(sheet, shop(svc)),
            file_name=f"statement-{sheet.client}-{sheet.month}.pdf",
            mime="application/pdf",
            key="statement_pdf",
        )

st.subheader("Monthly report")
st.caption(
    "The month on one page to print: is the model good, is it getting better, what changed, and "
    "what the clients brought (as of the month's end, or now for this month)."
)
report_month = st.selectbox("Month of the report", months, key="report_month")
st.download_button(
    "Monthly report (PDF)",
    monthly_report_pdf(svc, report_month),
    file_name=f"report-{report_month}.pdf",
    mime="application/pdf",
    key="report_pdf",
)

if not is_owner():
    st.caption("Only the owner can create, change or revoke client keys.")
    st.stop()

st.subheader("Client keys")
create, change, revoke = st.tabs(["New key", "Change limits or price", "Revoke"])
with create, st.form("new_key_form", clear_on_submit=True):
    name = st.text_input("Client name (letters, digits, '.', '_' or '-')", key="nk_name")
    scopes = st.multiselect(
        "May",
        list(views.SCOPE_NAMES),
        default=[Scope.QUOTE],
        format_func=lambda s: views.SCOPE_NAMES[s],
        key="nk_scopes",
    )
    x, y, z = st.columns(3)
    per_day = x.number_input("Stones a day (0: no limit)", 0, 10_000_000, 5_000, key="nk_day")
    per_minute = y.number_input("Requests a minute (0: no limit)", 0, 100_000, 60, key="nk_rpm")
    price = z.number_input(
        "Price per 1,000 stones ($)", 0.0, 1_000_000.0, float(default), key="nk_price"
    )
    if st.form_submit_button("Create the key"):
        try:
            secret, client = keys.create(
                name.strip(),
                frozenset(scopes),
                int(per_day) or None,
                int(per_minute) or None,
                None if float(price) == default else float(price),
            )
        except ClientKeyError as error:
            st.error(str(error))
        else:
            with svc.store.session() as session, session.begin():
                audit.record(session, who(), "create key", client.name, views.limits_words(client))
            st.session_state["new_key"] = (client.name, secret)
            st.rerun()

active = [c for c in keys.list() if c.active]
with change:
    if not active:
        st.write("No active key to change.")
    else:
        with st.form("change_key_form"):
            target = st.selectbox("Client", [c.name for c in active], key="ck_name")
            current = next(c for c in active if c.name == target)
            x, y, z = st.columns(3)
            per_day = x.number_input(
                "Stones a day (0: no limit)", 0, 10_000_000, current.stones_per_day or 0
            )
            per_minute = y.number_input(
                "Requests a minute (0: no limit)", 0, 100_000, current.requests_per_minute or 0
            )
            price = z.number_input(
                "Price per 1,000 stones ($)",
                0.0,
                1_000_000.0,
                float(current.price_per_1000 if current.price_per_1000 is not None else default),
            )
            if st.form_submit_button("Save"):
                changed = keys.change(
                    target,
                    int(per_day) or None,
                    int(per_minute) or None,
                    None if float(price) == default else float(price),
                )
                with svc.store.session() as session, session.begin():
                    audit.record(session, who(), "change key", target, views.limits_words(changed))
                notice(
                    "success",
                    f"'{target}': {views.limits_words(changed)}, "
                    f"${price_of(changed, default):,.2f} per 1,000 stones; saved (the servers "
                    "apply it within 5 seconds).",
                )
                st.rerun()
with revoke:
    if not active:
        st.write("No active key to revoke.")
    else:
        target = st.selectbox("Client", [c.name for c in active], key="rk_name")
        sure = st.checkbox(
            f"Stop '{target}' working: its calls are refused within 5 seconds", key="rk_sure"
        )
        if st.button("Revoke the key", disabled=not sure, key="rk_go"):
            keys.revoke(target)
            with svc.store.session() as session, session.begin():
                audit.record(session, who(), "revoke key", target, "")
            notice(
                "success",
                f"'{target}' is revoked: the servers refuse its calls within 5 seconds.",
            )
            st.rerun()
