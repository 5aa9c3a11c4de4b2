//! `#[wasmudf::scalar]` and `#[wasmudf::batch]`: turn Rust functions into component UDFs.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{
    parse_macro_input, Fields, FnArg, GenericArgument, ItemFn, ItemStruct, LitStr, PathArguments,
    ReturnType, Token, Type,
};

#[derive(Default)]
struct Options {
    name: Option<String>,
    volatility: Option<String>,
    null_handling: Option<String>,
    params: Option<Vec<Type>>,
    returns: Option<Type>,
}

fn parse_options(attr: TokenStream, batch: bool) -> syn::Result<Options> {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            o.name = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if meta.path.is_ident("volatility") {
            let v = meta.value()?.parse::<LitStr>()?.value();
            if !["immutable", "stable", "volatile"].contains(&v.as_str()) {
                return Err(meta.error("volatility is \"immutable\", \"stable\" or \"volatile\""));
            }
            o.volatility = Some(v);
        } else if batch && meta.path.is_ident("null_handling") {
            let v = meta.value()?.parse::<LitStr>()?.value();
            if !["strict", "called_on_null"].contains(&v.as_str()) {
                return Err(meta.error("null_handling is \"strict\" or \"called_on_null\""));
            }
            o.null_handling = Some(v);
        } else if batch && meta.path.is_ident("params") {
            let content;
            syn::parenthesized!(content in meta.input);
            let types = Punctuated::<Type, Token![,]>::parse_terminated(&content)?;
            o.params = Some(types.into_iter().collect());
        } else if batch && meta.path.is_ident("returns") {
            o.returns = Some(meta.value()?.parse::<Type>()?);
        } else {
            return Err(meta.error(if batch {
                "expected name, volatility, null_handling, params(...) or returns = T"
            } else {
                "expected name = \"...\" or volatility = \"...\""
            }));
        }
        Ok(())
    });
    parser.parse(attr)?;
    Ok(o)
}

/// `Some(T)` if `ty` is `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

fn volatility(o: &Options) -> TokenStream2 {
    match o.volatility.as_deref() {
        Some("volatile") => quote!(::wasmudf::Volatility::Volatile),
        Some("stable") => quote!(::wasmudf::Volatility::Stable),
        _ => quote!(::wasmudf::Volatility::Immutable),
    }
}

fn describe_module(
    func: &ItemFn,
    o: &Options,
    params: &[&Type],
    returns: TokenStream2,
    strict: bool,
    call: TokenStream2,
) -> TokenStream2 {
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let name = o.name.clone().unwrap_or_else(|| ident.to_string());
    let vol = volatility(o);
    let nulls = if strict {
        quote!(::wasmudf::NullHandling::Strict)
    } else {
        quote!(::wasmudf::NullHandling::CalledOnNull)
    };
    quote! {
        #func

        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports, clippy::all)]
        #vis mod #ident {
            use super::*;

            pub const FUNCTION: ::wasmudf::Function = ::wasmudf::Function::Scalar(::wasmudf::ScalarFunction {
                name: #name,
                params: || ::std::vec![#(<#params as ::wasmudf::SqlType>::data_type()),*],
                returns: || #returns,
                volatility: #vol,
                null_handling: #nulls,
                call: __call,
            });

            #call
        }
    }
}

/// The generated `__call`: checks the arity, then runs `body`.
fn call_fn(arity: usize, body: TokenStream2) -> TokenStream2 {
    quote! {
        fn __call(
            rows: usize,
            args: &[::wasmudf::Column],
        ) -> ::core::result::Result<::wasmudf::Column, ::wasmudf::UdfError> {
            if args.len() != #arity {
                return Err(::wasmudf::error("wrong number of arguments"));
            }
            #body
        }
    }
}

/// Exposes a row-at-a-time Rust function as a scalar SQL function; the SDK runs it
/// over whole batches.
///
/// Arguments wrapped in `Option` see nulls; if none is, the function is strict (never
/// called for a row with a null argument). Options: `name = "sql_name"`,
/// `volatility = "immutable" | "stable" | "volatile"` (default immutable).
#[proc_macro_attribute]
pub fn scalar(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    let options = match parse_options(attr, false) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand_scalar(&func, &options) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_scalar(func: &ItemFn, o: &Options) -> syn::Result<TokenStream2> {
    let ident = &func.sig.ident;
    if !func.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &func.sig.generics,
            "a UDF cannot be generic",
        ));
    }
    let ReturnType::Type(_, ret) = &func.sig.output else {
        return Err(syn::Error::new_spanned(
            &func.sig,
            "a UDF must return a value",
        ));
    };
    let mut params = Vec::new();
    let mut nullable = Vec::new();
    for arg in &func.sig.inputs {
        let FnArg::Typed(pt) = arg else {
            return Err(syn::Error::new_spanned(arg, "a UDF cannot take self"));
        };
        match option_inner(&pt.ty) {
            Some(inner) => {
                params.push(inner);
                nullable.push(true);
            }
            None => {
                params.push(&*pt.ty);
                nullable.push(false);
            }
        }
    }
    let strict = !nullable.iter().any(|n| *n);
    let readers: Vec<_> = (0..params.len()).map(|i| format_ident!("r{}", i)).collect();
    let arity = params.len();
    let reads = readers
        .iter()
        .zip(&params)
        .enumerate()
        .map(|(i, (r, t))| quote!(let #r = args[#i].reader::<#t>(rows)?;));
    let values = readers.iter().zip(&nullable).map(|(r, n)| {
        if *n {
            quote!(#r.get(i))
        } else {
            quote!(#r.value(i))
        }
    });
    let strict_readers: Vec<_> = readers
        .iter()
        .zip(&nullable)
        .filter(|(_, n)| !**n)
        .map(|(r, _)| r)
        .collect();
    let null_check = if strict_readers.is_empty() {
        quote!()
    } else {
        quote! {
            let skip_nulls = false #(|| #strict_readers.has_nulls())*;
        }
    };
    let null_skip = if strict_readers.is_empty() {
        quote!()
    } else {
        quote! {
            if skip_nulls && !(true #(&& #strict_readers.is_valid(i))*) {
                out.push_null();
                continue;
            }
        }
    };
    let value_ty = quote!(<#ret as ::wasmudf::IntoOutput>::Value);
    // Fast path: a strict function that never returns null, over full columns without
    // nulls, is one zip-map-collect that the compiler can vectorize.
    let fast_path = if strict {
        let zipped = readers
            .iter()
            .map(|r| quote!(#r.iter()))
            .reduce(|acc, next| quote!(#acc.zip(#next)))
            .unwrap_or_else(|| quote!((0..rows).map(|_| ())));
        let pattern = if readers.is_empty() {
            quote!(_)
        } else {
            readers
                .iter()
                .map(|r| quote!(#r))
                .reduce(|acc, next| quote!((#acc, #next)))
                .expect("non-empty")
        };
        quote! {
            if <#ret as ::wasmudf::IntoOutput>::NEVER_NULL
                && true #(&& #readers.is_full() && !#readers.has_nulls())*
            {
                // Optimistic: assume no row fails. If one does, the row-by-row path
                // below runs and reports the first failure with its row.
                let mut failed = false;
                let values = #zipped.map(|#pattern| {
                    match ::wasmudf::IntoOutput::into_value(super::#ident(#(#readers),*)) {
                        Some(v) => v,
                        None => {
                            failed = true;
                            ::core::default::Default::default()
                        }
                    }
                });
                let out = ::wasmudf::Output::<#value_ty>::from_values(rows, values);
                if !failed {
                    return out.finish();
                }
            }
        }
    } else {
        quote!()
    };
    let call = call_fn(
        arity,
        quote! {
                #(#reads)*
                #fast_path
                let mut out = ::wasmudf::Output::<#value_ty>::with_capacity(rows);
                #null_check
                for i in 0..rows {
                    #null_skip
                    match ::wasmudf::IntoOutput::into_output(super::#ident(#(#values),*)) {
                        Ok(Some(v)) => out.push(v),
                        Ok(None) => out.push_null(),
                        Err(message) => {
                            return Err(::wasmudf::UdfError { message, row: Some(i as u32) })
                        }
                    }
                }
                out.finish()
        },
    );
    let returns = quote!(<#value_ty as ::wasmudf::SqlType>::data_type());
    Ok(describe_module(func, o, &params, returns, strict, call))
}

/// Exposes a whole-batch function `fn(rows: usize, args: &[Column]) -> Result<Column, UdfError>`
/// as a scalar SQL function.
///
/// Required: `params(T, ...)` and `returns = T` (SDK types). Options: `name`,
/// `volatility`, `null_handling = "strict" | "called_on_null"` (default strict: the host
/// nulls every row with a null argument, whatever the function returns there).
#[proc_macro_attribute]
pub fn batch(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    let options = match parse_options(attr, true) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let (Some(params), Some(returns)) = (&options.params, &options.returns) else {
        return syn::Error::new(Span::call_site(), "batch needs params(...) and returns = T")
            .to_compile_error()
            .into();
    };
    let ident = &func.sig.ident;
    let call = call_fn(params.len(), quote!(super::#ident(rows, args)));
    let params: Vec<&Type> = params.iter().collect();
    let strict = options.null_handling.as_deref() != Some("called_on_null");
    let returns = quote!(<#returns as ::wasmudf::SqlType>::data_type());
    describe_module(&func, &options, &params, returns, strict, call).into()
}

/// `GeoMean` -> `geo_mean`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Exports a per-group state struct (which implements `wasmudf::Aggregate`) as an
/// aggregate SQL function. Its named fields are the intermediate state columns.
///
/// Listed in `export!` by its snake-case name (`GeoMean` -> `geo_mean`), which is also
/// its SQL name unless `name = "..."` says otherwise. Option: `volatility`.
#[proc_macro_attribute]
pub fn aggregate(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemStruct);
    let options = match parse_options(attr, false) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let Fields::Named(fields) = &item.fields else {
        return syn::Error::new_spanned(
            &item.ident,
            "an aggregate's state is a struct with named fields (each a state column)",
        )
        .to_compile_error()
        .into();
    };
    if fields.named.is_empty() {
        return syn::Error::new_spanned(&item.ident, "an aggregate needs at least one state field")
            .to_compile_error()
            .into();
    }
    let ident = &item.ident;
    let vis = &item.vis;
    let module = format_ident!("{}", snake_case(&ident.to_string()));
    let name = options.name.clone().unwrap_or_else(|| module.to_string());
    let vol = volatility(&options);
    let names: Vec<_> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.clone())
        .collect();
    let types: Vec<_> = fields.named.iter().map(|f| f.ty.clone()).collect();
    let indices: Vec<usize> = (0..names.len()).collect();
    let count = names.len();
    quote! {
        #item

        impl ::wasmudf::AggregateState for #ident {
            fn state_types() -> ::std::vec::Vec<::wasmudf::DataType> {
                ::std::vec![#(<#types as ::wasmudf::SqlType>::data_type()),*]
            }

            fn write_state(
                groups: &[Self],
            ) -> ::core::result::Result<::std::vec::Vec<::wasmudf::Column>, ::wasmudf::UdfError> {
                ::core::result::Result::Ok(::std::vec![
                    #(::wasmudf::state_column(groups, |g: &Self| &g.#names)?),*
                ])
            }

            fn read_state(
                columns: &[::wasmudf::Column],
                rows: usize,
            ) -> ::core::result::Result<::std::vec::Vec<Self>, ::wasmudf::UdfError> {
                if columns.len() != #count {
                    return ::core::result::Result::Err(::wasmudf::error("wrong number of state columns"));
                }
                #(
                    let mut #names = <#types as ::wasmudf::StateValue>::read_column(&columns[#indices], rows)?.into_iter();
                )*
                let mut out = ::std::vec::Vec::with_capacity(rows);
                for _ in 0..rows {
                    out.push(#ident {
                        #(#names: #names.next().ok_or_else(|| ::wasmudf::error("short state column"))?,)*
                    });
                }
                ::core::result::Result::Ok(out)
            }
        }

        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports, clippy::all)]
        #vis mod #module {
            use super::*;

            pub const FUNCTION: ::wasmudf::Function = ::wasmudf::Function::Aggregate(
                ::wasmudf::AggregateFunction::per_group::<super::#ident>(#name, #vol),
            );
        }
    }
    .into()
}
