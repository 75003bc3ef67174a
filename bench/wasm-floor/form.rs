// The form and counter each floor app shows: `form_and_counter!(component)` or `(island)`.

macro_rules! form_and_counter {
    ($kind:ident) => {
        #[$kind]
        fn FormAndCounter() -> impl IntoView {
            let (count, set_count) = signal(0);
            view! {
                <form>
                    <input type="text" name="name"/>
                    <label><input type="radio" name="choice" value="a"/>"A"</label>
                    <label><input type="radio" name="choice" value="b"/>"B"</label>
                    <label><input type="radio" name="choice" value="c"/>"C"</label>
                    <select name="pick">
                        <option value="1">"One"</option>
                        <option value="2">"Two"</option>
                    </select>
                </form>
                <button on:click=move |_| set_count.update(|n| *n += 1)>"Count: " {count}</button>
            }
        }
    };
}
